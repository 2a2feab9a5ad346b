"""The `mlp-backends` command: its parser, its logging and its exit codes. Each command
(backends, train, predict, evaluate, export, data, bench) lives in a module of its own
under mlp_backends/commands/ (bench in mlp_backends/bench/).

Exit codes: 0 success; 2 bad usage or input (one line on stderr, no
traceback unless --debug); 1 anything else.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
import warnings

from . import __version__
from .commands import backends as backends_command
from .commands import data as data_commands
from .commands import inference
from .commands import train as train_command
from .commands.common import PROG, examples
from .errors import ClusterError, TrainingInterrupted, UsageError, one_line


class _ClosedPipeSafe:
    """stdout that, once its reader has gone (`train --save m.npz | head -3`), drops
    further output instead of raising, so that the run still does and saves what it
    was asked to; everything else passes through to the stream it wraps."""

    def __init__(self, stream):
        self.stream, self.reader_gone = stream, False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        self.reader_gone = True
        try:  # Python flushes stdout once more at exit: let that go to /dev/null, not to a closed pipe
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def __getattr__(self, name):
        return getattr(self.stream, name)


# -- the parser -----------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse with errors on one line (what is wrong, then where to look), exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    """The `mlp-backends` parser: global --debug options, then one subcommand per module of commands/."""
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="add the traceback to an error (the exit code stays) and show this library's "
                            "debug logs")
    debug.add_argument("--debug-loggers", metavar="NAMES", default=argparse.SUPPRESS,
                       help="other libraries' loggers to show at debug level too, comma-separated "
                            "(e.g. jax,distributed), or all")
    parser = _Parser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter, parents=[debug],
        description="Train a multi-layer perceptron on NumPy, CuPy, PyTorch, JAX or any backend plugin.",
        epilog=examples(f"{PROG} backends", f"{PROG} train", f"{PROG} train --data iris --save iris.npz",
                         f"{PROG} predict iris.npz iris", f"{PROG} evaluate iris.npz iris",
                         f"{PROG} COMMAND --help"),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name, help, lines):
        return sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                              parents=[debug], formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=examples(*lines))

    p = command("backends", "list registered backends and whether they run here",
                [f"{PROG} backends", f"{PROG} backends --json"])
    p.add_argument("--json", action="store_true", help="print a JSON list (for scripts)")
    p.set_defaults(func=backends_command.run)

    p = command("train", "train on a data set (default: digits, automatic backend)", [
        f"{PROG} train",
        f"{PROG} train --backend torch --hidden 128 64 --epochs 50",
        f"{PROG} train --data flowers.csv --target species --save flowers.npz",
        f"{PROG} train --data ~/mnist/train-images-idx3-ubyte.gz --hidden 256 --validation-split 0.1 "
        "--early-stopping 5 --plot curves.png",
        f"{PROG} train --data synthetic:n=60000,d=784,classes=10 --quiet --log-json log.jsonl",
    ])
    train_command.add_arguments(p)
    p.set_defaults(func=train_command.run)

    p = command("predict", "predict labels (or probabilities) for the rows of a data source, as CSV",
                [f"{PROG} predict model.npz new.csv", f"{PROG} predict model.npz new.csv --proba --out proba.csv",
                 f"{PROG} predict model.npz digits --backend torch"])
    inference.add_arguments(p, predict=True)
    p.set_defaults(func=inference.predict)
    p = command("evaluate", "accuracy, per-class precision and recall, and the confusion matrix on labelled data",
                [f"{PROG} evaluate model.npz test.csv --target species", f"{PROG} evaluate model.npz digits"])
    inference.add_arguments(p, predict=False)
    p.set_defaults(func=inference.evaluate)

    p = command("export", "write a saved model's forward pass as an ONNX file that takes raw rows",
                [f"{PROG} export model.npz model.onnx"])
    p.add_argument("model", metavar="MODEL", help="a model file saved by train --save or MLP.save")
    p.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write (needs the onnx extra)")
    p.set_defaults(func=inference.export)

    p = command("data", "write data files: convert a source for training from disk, or export one",
                [f"{PROG} data convert big.csv big/", f"{PROG} train --data big/ --epochs 5",
                 f"{PROG} data export iris flowers.csv --target species",
                 f"{PROG} data export digits digits-images-idx3-ubyte.gz"])
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", parser_class=_Parser, required=True)
    data_commands.add_parsers(data_sub, debug)

    from . import bench  # light: NumPy and the standard library at import

    p = command("bench", "benchmark the backends side by side (epoch time, GEMM floor, memory)", [
        f"{PROG} bench",
        f"{PROG} bench --workload tiny --backends numpy --references none --repeats 1",
        f"{PROG} bench --workload mnist --backends numpy,torch --plain --threads 1 --plot mnist.png",
        f"{PROG} bench --workload small --references numpy-handwritten --repeats 5 --json small.json",
        f"{PROG} bench --workload wide --backends cupy,torch --tf32   # on a GPU",
    ])
    bench.add_arguments(p)
    p.set_defaults(func=bench.run)
    return parser


def _dask_logs(debug: bool) -> None:
    """Dask's `distributed` logs to its own stderr handler from INFO up (cluster start and
    stop, lost workers); the training loop reports what matters in one line, so
    those logs show with --debug only (all of them, DEBUG included). Dask reads the
    variable when it is imported."""
    level = "debug" if debug else "critical"
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", level)  # the user's own setting wins
    if "distributed" in sys.modules:
        logging.getLogger("distributed").setLevel(level.upper())


def _setup_logging(debug: bool, others: str) -> None:
    """Warnings from everyone; debug logs from this library with --debug, and from other
    libraries only when named (JAX alone writes about a hundred lines at debug level)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    names = [n.strip() for n in others.split(",") if n.strip()]
    if debug:
        names += ["mlp_backends", "backends"]
    for name in names:
        logging.getLogger(None if name == "all" else name).setLevel(logging.DEBUG)


def _failed(code: int, message: str, exc: BaseException, debug: bool) -> int:
    """One line on stderr, after the traceback with --debug; the same exit code either way."""
    if debug:
        traceback.print_exception(exc)
    print(message, file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the command `argv` names (default: sys.argv[1:]) and return the exit code: 0 done,
    2 bad usage or input, 1 anything else, 130 interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    others = getattr(args, "debug_loggers", "")
    debug = getattr(args, "debug", False) or bool(others)
    _setup_logging(debug, others)
    if args.command is None:
        parser.print_help()
        return 2
    dask_logs = os.environ.get("DASK_LOGGING__DISTRIBUTED")
    _dask_logs(debug)
    if not debug:
        # A diverging run makes NumPy warn on every overflow; the loop detects it and says
        # so in one line with what to do, so the raw warnings are noise here.
        warnings.filterwarnings("ignore", r"(overflow|invalid value|divide by zero) encountered",
                                RuntimeWarning)
    stdout, sys.stdout = sys.stdout, _ClosedPipeSafe(sys.stdout)
    try:
        return args.func(args)
    except UsageError as exc:
        return _failed(2, f"{PROG}: error: {exc}", exc, debug)
    except TrainingInterrupted as exc:  # Ctrl-C, handled after a step: says where and how to resume
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except MemoryError as exc:  # an allocation no check could foresee (ours are DeviceMemoryError, above)
        if debug:
            raise
        print(f"{PROG}: error: out of memory ({one_line(exc)}); try less data, a smaller model "
              "or a smaller --batch-size", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `mlp-backends predict ... | head`
        sys.stderr.close()
        return 0
    except (OSError, ClusterError) as exc:  # the disk or the cluster, not the input nor a bug
        return _failed(1, f"{PROG}: error: {exc}", exc, debug)
    except Exception as exc:  # noqa: BLE001 - exit 1 with one line; --debug shows the traceback
        hint = "" if debug else " (run again with --debug for the traceback)"
        return _failed(1, f"{PROG}: internal error: {type(exc).__name__}: {exc}{hint}", exc, debug)
    finally:
        sys.stdout = stdout
        # main() called in a process (tests, notebooks) leaves its environment as it was
        if dask_logs is None:
            os.environ.pop("DASK_LOGGING__DISTRIBUTED", None)


if __name__ == "__main__":
    sys.exit(main())
