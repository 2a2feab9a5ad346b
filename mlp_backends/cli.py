"""The `mlp-backends` command.

Exit codes: 0 success; 2 bad usage or input (one line on stderr, no
traceback unless --debug); 1 anything else.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from . import __version__
from .errors import UsageError


def _cmd_backends(args) -> int:
    from .registry import list_backends

    rows = list_backends()
    width = max(len(r.name) for r in rows)
    print(f"{'backend':<{width}}  usable  {'version':<12}  devices / reason")
    for r in rows:
        where = ", ".join(r.devices) if r.usable else r.reason
        print(f"{r.name:<{width}}  {'yes' if r.usable else 'no':<6}  {r.version or '-':<12}  {where}")
    return 0


def _cmd_train(args) -> int:
    from . import data
    from .model import MLP
    from .registry import auto_choice, get_backend

    spec = args.backend
    backend = get_backend(spec)
    why = auto_choice()[1] if (spec or "auto") == "auto" else "named with --backend"
    print(f"backend: {backend.spec} ({why})")

    ds = data.load(args.data, seed=args.seed)
    model = MLP(ds.n_features, args.hidden, ds.n_classes, args.activation,
                backend=backend, dtype=args.dtype, seed=args.seed)
    print(f"data: {ds.name}, {len(ds.y_train)} train / {len(ds.y_test)} test samples, "
          f"{ds.n_features} features, {ds.n_classes} classes; model: {model}")

    class PrintEpoch:
        def on_epoch_end(self, model, logs):
            print(f"epoch {logs['epoch']:>4}/{args.epochs}  loss {logs['loss']:.4f}  "
                  f"accuracy {logs['accuracy']:.4f}  ({logs['time'] * 1000:.0f} ms)")

    started = time.perf_counter()
    history = model.fit(ds.X_train, ds.y_train, epochs=args.epochs, batch_size=args.batch_size,
                        learning_rate=args.learning_rate, optimizer=args.optimizer,
                        callbacks=[PrintEpoch()])
    wall = time.perf_counter() - started
    if history.stopped_early:
        print(history.stopped_early)
    print(f"train accuracy: {model.score(ds.X_train, ds.y_train):.4f}")
    print(f"test accuracy: {model.score(ds.X_test, ds.y_test):.4f}")
    print(f"wall time: {wall:.2f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlp-backends",
        description="Train a multi-layer perceptron on NumPy, CuPy, PyTorch, JAX or any backend plugin.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("backends", help="list registered backends and whether they run here")
    p.set_defaults(func=_cmd_backends)

    p = sub.add_parser(
        "train", help="train on a data set (default: digits, automatic backend)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  mlp-backends train\n  mlp-backends train --backend torch --hidden 128 64",
    )
    p.add_argument("--data", default="digits", help="built-in data set (default: digits)")
    p.add_argument("--hidden", type=int, nargs="+", default=[64], metavar="N",
                   help="hidden layer sizes (default: 64)")
    p.add_argument("--activation", default="relu", choices=["sigmoid", "relu", "tanh"])
    p.add_argument("--optimizer", default="adam", choices=["sgd", "momentum", "adam"])
    p.add_argument("--learning-rate", "--lr", type=float, default=0.003)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--backend", default=None,
                   help="auto (default), a name, or name:device; $MLP_BACKEND also works")
    p.set_defaults(func=_cmd_train)

    from . import bench  # light: NumPy and the standard library at import

    p = sub.add_parser("bench", help="benchmark the backends side by side (epoch time, GEMM floor, memory)")
    bench.add_arguments(p)
    p.set_defaults(func=bench.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except UsageError as exc:
        if args.debug:
            raise
        print(f"mlp-backends: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlp-backends: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
