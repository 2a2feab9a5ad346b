"""The `mlp-backends` command: backends, train, predict, evaluate.

Exit codes: 0 success; 2 bad usage or input (one line on stderr, no
traceback unless --debug); 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

from . import __version__, defaults, validation
from .errors import InputError, TrainingInterrupted, UsageError, one_line

PROG = "mlp-backends"


# -- helpers ------------------------------------------------------------------
def _threads_arg(text: str):
    """--threads: a whole number of at least 1, or auto (argparse turns the error into exit 2)."""
    from .threads import requested

    try:
        return requested("auto" if text.strip().lower() == "auto" else text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a thread count: give a whole number of at least 1, "
                                         "or auto") from exc


def _choose_backend(spec: str | None):
    """The backend and why it was chosen, in words."""
    from .registry import ENV_VAR, auto_choice, get_backend

    backend = get_backend(spec)
    if spec and spec != "auto":
        why = "named with --backend"
    elif not spec and os.environ.get(ENV_VAR) and os.environ[ENV_VAR] != "auto":
        why = f"from ${ENV_VAR}"
    else:
        why = auto_choice()[1]
    return backend, why


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


# -- commands -----------------------------------------------------------------
def _cmd_backends(args) -> int:
    from .registry import list_backends

    rows = list_backends()
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
        return 0
    width = max([len("backend")] + [len(r.name) for r in rows])
    print(f"{'backend':<{width}}  usable  {'version':<12}  devices / reason")
    for r in rows:
        where = ", ".join(r.devices) if r.usable else r.reason
        print(f"{r.name:<{width}}  {'yes' if r.usable else 'no':<6}  {r.version or '-':<12}  {where}")
    return 0


SCHEDULER_FILE_WAIT_S = 60.0


def _scheduler_address(scheduler: str) -> str:
    """--scheduler as an address: a scheduler file (`dask scheduler --scheduler-file F.json`,
    which may still be starting: waited for, as dask's own clients do) gives its `address`."""
    if not scheduler.lower().endswith(".json"):
        return scheduler
    path, waited = Path(scheduler).expanduser(), 0.0
    while True:
        try:
            return json.loads(path.read_text())["address"]
        except (OSError, ValueError, KeyError, TypeError) as exc:  # absent, or being written
            if waited >= SCHEDULER_FILE_WAIT_S:
                what = "no scheduler file" if isinstance(exc, OSError) else "no address in the scheduler file"
                raise InputError(f"{what} {scheduler} after {waited:.0f} s; start the scheduler with "
                                 f"dask scheduler --scheduler-file {scheduler}") from None
        time.sleep(0.2)
        waited += 0.2


def _choices(name: str) -> tuple:
    """An option's choices: the values the API's rule for `name` allows (validation.PARAMETERS)."""
    return validation.PARAMETERS[name].choices


def _train_settings(args) -> dict:
    """The run's settings: the defaults table, then --recipe, then the options given; each checked."""
    s = defaults.settings(
        args.recipe, hidden_size=args.hidden, activation=args.activation, init=args.init, dtype=args.dtype,
        seed=args.seed, l2=args.l2, optimizer=args.optimizer, learning_rate=args.learning_rate,
        batch_size=args.batch_size, epochs=args.epochs)
    s["batch_size"] = defaults.batch_rows(s["batch_size"])
    hidden = s["hidden_size"]
    s["hidden_size"] = [hidden] if isinstance(hidden, int) else list(hidden)
    # Each option against the rule of its Python name (mlp_backends/validation.py); the CLI
    # adds its own: at least one epoch, and an early-stopping patience of 0 for "off".
    checks = [("--hidden", "hidden_size", h, None) for h in s["hidden_size"]] + [
        ("--epochs", "epochs", s["epochs"], None),
        ("--batch-size", "batch_size", s["batch_size"], validation.Whole(1)),
        ("--learning-rate", "learning_rate", s["learning_rate"], None),
        ("--l2", "l2", s["l2"], None),
        ("--seed", "seed", s["seed"], None),
        ("--test-size", "test_size", args.test_size, None),
        ("--validation-split", "validation_size", args.validation_split, None),
        ("--checkpoint-every", "checkpoint_every", args.checkpoint_every, None),
        ("--early-stopping", "patience", args.early_stopping, validation.Whole(0)),
    ]
    if isinstance(s["epochs"], int) and s["epochs"] < 1:  # the API allows 0 (no training); a run needs one
        raise InputError(f"--epochs must be at least 1, got {s['epochs']}")
    for option, name, value, rule in checks:
        if value is None and name in ("batch_size", "learning_rate"):  # full batch; the recipe's rate
            continue
        try:
            validation.check_param(name, value, rule)
        except UsageError as exc:
            raise type(exc)(f"{option}: {exc}") from None
    return s


def _cmd_train(args) -> int:
    from . import data
    from .callbacks import EarlyStopping, JsonLog, ProgressBar
    from .checkpoint import Checkpoint
    from .model import MLP

    # Everything the options alone can tell is checked before the backend starts or data load.
    s = _train_settings(args)
    from .checkpoint import FILE
    from .io import check_outputs

    folder = args.resume or args.checkpoint
    check_outputs({"--save": args.save, "--plot": args.plot, "--log-json": args.log_json,
                   "--checkpoint": folder and str(Path(folder) / FILE)},
                  {"--data": args.data}, new_folders=("--checkpoint",))
    if args.plot:
        from .plot import require_matplotlib

        require_matplotlib()  # before training, so a missing extra costs nothing
    data.check_source(args.data, args.target)
    from .model import check_network_fits

    check_network_fits([1, *s["hidden_size"], 2], s["dtype"],  # before the data are read: a lower bound
                       what=f"--hidden {' '.join(map(str, s['hidden_size']))} alone")
    if args.resume and args.checkpoint and Path(args.resume) != Path(args.checkpoint):
        raise InputError("--resume DIR already saves its checkpoints in DIR; drop --checkpoint or name the same folder")
    checkpoint = args.resume or args.checkpoint
    if args.resume and not Checkpoint(args.resume).exists():
        raise InputError(f"no checkpoint in {args.resume}; start a run with --checkpoint {args.resume} first")
    if checkpoint:
        Checkpoint(checkpoint).refuse_another_run(bool(args.resume))

    spec = args.backend
    if args.scheduler:  # a Dask cluster: the dask backend at that address
        if (spec or "dask") != "dask":
            raise InputError(f"--scheduler trains on a Dask cluster; use it with --backend dask, not {spec!r}")
        spec = f"dask:{_scheduler_address(args.scheduler)}"
    backend, why = _choose_backend(spec)
    if not backend.supports(s["dtype"]):
        raise InputError(f"backend {backend.spec} has no {s['dtype']} on its device; "
                         "use --dtype float32 or another backend or device")
    print(f"backend: {backend.spec} ({why})")
    ds = data.load(args.data, seed=s["seed"], target=args.target, test_size=args.test_size,
                   validation_size=args.validation_split, dtype=s["dtype"])
    model = MLP(ds.n_features, s["hidden_size"], ds.n_classes, s["activation"],
                backend=backend, dtype=s["dtype"], seed=s["seed"], init=s["init"], l2=s["l2"])
    val = "" if ds.X_val is None else f" / {len(ds.y_val)} validation"
    print(f"data: {ds.name}, {len(ds.y_train)} train{val} / {len(ds.y_test)} test samples, "
          f"{ds.n_features} features, {ds.n_classes} classes; model: {model}")
    if ds.standardizer is not None and ds.standardizer.note():
        print(ds.standardizer.note())
    if s["learning_rate"] is None:  # the article's eta, per sample on a summed loss, on our mean loss
        s["learning_rate"] = defaults.article_learning_rate(len(ds.y_train))
        print(f"recipe {args.recipe}: full-batch gradient descent, learning rate {defaults.ARTICLE_ETA:g} per "
              f"sample x {len(ds.y_train)} samples = {s['learning_rate']:g} on the mean loss")

    callbacks = []
    if not args.quiet:
        callbacks.append(ProgressBar(s["epochs"]))
    if args.log_json:
        callbacks.append(JsonLog(args.log_json, append=bool(args.resume)))
    stopper = EarlyStopping(patience=args.early_stopping) if args.early_stopping else None
    if stopper:
        callbacks.append(stopper)
    validation = None if ds.X_val is None else (ds.X_val, ds.y_val)

    started = time.perf_counter()
    try:
        history = model.fit(ds.X_train, ds.y_train, epochs=s["epochs"], batch_size=s["batch_size"],
                            learning_rate=s["learning_rate"], optimizer=s["optimizer"],
                            callbacks=callbacks, validation_data=validation,
                            checkpoint=checkpoint, checkpoint_every=args.checkpoint_every,
                            resume=bool(args.resume), threads=args.threads)
    except TrainingInterrupted as exc:
        if not args.save:
            raise
        kept = " (the file already there is kept)" if Path(args.save).exists() else ""
        raise TrainingInterrupted(f"{exc}; the model was not saved to {args.save}{kept}") from None
    wall = time.perf_counter() - started
    if history.diverged:
        print(f"{PROG}: {history.stopped_early}", file=sys.stderr)
    elif history.stopped_early:
        print(history.stopped_early)
    parts = [("train", ds.X_train, ds.y_train)]
    if validation is not None:
        parts.append(("validation", *validation))
    parts.append(("test", ds.X_test, ds.y_test))
    for name, X, y in parts:
        loss = model.loss(X, y)
        # After a divergence the kept parameters are finite but may be too large for a finite loss.
        why = "" if math.isfinite(loss) else " (the kept parameters are finite, but too large for a finite loss)"
        print(f"{name} accuracy: {model.score(X, y):.4f}")
        print(f"{name} loss: {loss:.4f}{why}")
    if history.threads.get("threads"):
        print(f"threads: {history.threads['threads']} ({history.threads['mode']}: {history.threads['why']})")
    done = f"{len(history)} epochs" + (f" finished, diverged in epoch {len(history) + 1}" if history.diverged else "")
    print(f"wall time: {wall:.2f} s ({done})")

    if args.save and history.diverged and Path(args.save).exists():
        print(f"{PROG}: kept {args.save} as it was: this run diverged, so its model was not saved over it",
              file=sys.stderr)
    elif args.save:
        model.extra = {
            "classes": ds.classes,
            "standardization": ds.standardizer.as_dict() if ds.standardizer else None,
            "feature_names": ds.feature_names,
            "target": ds.target,
            "training": {
                "data": args.data, "target": args.target, "test_size": args.test_size,
                "validation_split": args.validation_split, "epochs": s["epochs"], "epochs_run": len(history),
                "batch_size": s["batch_size"], "learning_rate": s["learning_rate"],
                "optimizer": s["optimizer"], "l2": s["l2"], "seed": s["seed"], "recipe": args.recipe,
                "early_stopping": args.early_stopping, "backend": backend.spec,
            },
        }
        model.save(args.save)
        print(f"saved model: {args.save}")
    if args.plot:
        from .plot import plot_history

        kept = stopper.best_epoch if stopper and "restored" in history.stopped_early else None
        plot_history(history, args.plot, title=f"{ds.name}: {model}", kept_epoch=kept)
        print(f"saved plot: {args.plot}")
    return 1 if history.diverged else 0  # the run did not do what was asked: scripts must notice


def _load_for_inference(args):
    """The model (which applies its saved standardization and classes itself, exactly as
    `MLP.load` in Python does), the data's raw rows as a row source read a block at a time
    (so that standardizing needs no second copy of the data), the raw labels (or None),
    and the class labels of the outputs."""
    import numpy as np

    from . import data
    from .model import MLP

    data.check_source(args.data, args.target)  # before the model file and the backend
    model = MLP.load(args.model, backend=args.backend)
    ds = data.read(args.data, target=args.target, n_features=model.sizes[0], dtype=model.dtype,
                   features=model.extra.get("feature_names"), saved_target=model.extra.get("target"))
    if ds.X.shape[1] != model.sizes[0]:
        raise InputError(f"{args.data} has {ds.X.shape[1]} features per row but the model takes {model.sizes[0]}; "
                         "pass data with the columns it was trained on")
    classes = model.classes if model.classes is not None else np.arange(model.sizes[-1])
    return model, data.outofcore.as_source(ds.X), ds.y, classes


def _cmd_predict(args) -> int:
    import csv
    import io

    from .io import check_outputs

    check_outputs({"--out": args.out}, {"MODEL": args.model, "DATA": args.data})
    model, X, _, classes = _load_for_inference(args)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if args.proba:
        writer.writerow([str(c) for c in classes])
        writer.writerows([f"{p:.6g}" for p in row] for row in model.predict_proba(X))
    else:
        writer.writerow(["label"])
        writer.writerows([c] for c in model.predict(X).tolist())
    if args.out:
        from .io import atomic_write

        atomic_write(args.out, lambda f: f.write(out.getvalue()), mode="w")
        print(f"wrote {len(X)} predictions to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(out.getvalue())
    return 0


def _cmd_evaluate(args) -> int:
    import numpy as np

    model, X, y_raw, classes = _load_for_inference(args)
    if y_raw is None:
        raise InputError(f"{args.data} has no labels; evaluate needs them (use --target to name the label column)")
    index = {c: i for i, c in enumerate(classes.tolist())}
    unknown = sorted({str(v) for v in y_raw.tolist() if v not in index})
    if unknown:
        raise InputError(f"{args.data} has labels the model does not know: {', '.join(unknown[:5])}; "
                         f"its classes are {', '.join(map(str, classes[:20]))}")
    y = np.array([index[v] for v in y_raw.tolist()], dtype=np.int64)
    pred = np.array([index[v] for v in model.predict(X).tolist()], dtype=np.int64)
    k = len(classes)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    correct = int(np.trace(confusion))
    print(f"data: {args.data}, {len(y)} samples; model: {model}")
    print(f"accuracy: {correct / len(y):.4f} ({correct}/{len(y)})")
    print(f"loss: {model.loss(X, y_raw):.4f}")
    names = [str(c) for c in classes]
    w = max(5, *map(len, names))
    print()
    print(f"{'class':<{w}}  precision  recall  support")
    for i, name in enumerate(names):
        predicted, actual = confusion[:, i].sum(), confusion[i, :].sum()
        precision = f"{confusion[i, i] / predicted:.4f}" if predicted else "-"
        recall = f"{confusion[i, i] / actual:.4f}" if actual else "-"
        print(f"{name:<{w}}  {precision:>9}  {recall:>6}  {actual:>7}")
    print()
    print("confusion matrix (rows: true class, columns: predicted class):")
    cw = max(len(str(confusion.max())), *map(len, names))
    print(" " * w + "  " + " ".join(f"{n:>{cw}}" for n in names))
    for name, row in zip(names, confusion):
        print(f"{name:<{w}}  " + " ".join(f"{v:>{cw}}" for v in row))
    return 0


def _cmd_export(args) -> int:
    from .io import check_outputs
    from .model import MLP

    if Path(args.out).expanduser().resolve() == Path(args.model).expanduser().resolve():
        raise InputError(f"the ONNX file would overwrite the model {args.model}; give another name")
    check_outputs({"OUT.onnx": args.out})
    model = MLP.load(args.model, backend="numpy")
    path = model.export_onnx(args.out)
    how = "raw rows (the saved standardization is in the graph)" if model.extra.get("standardization") \
        else "rows as the model was trained on (no standardization was saved)"
    print(f"wrote {path}: input X ({model.dtype}, N x {model.sizes[0]}: {how}); "
          f"outputs probabilities (N x {model.sizes[-1]}) and label")
    return 0


def _cmd_data_convert(args) -> int:
    from .convert import convert

    started = time.perf_counter()
    rows, features, dtype = convert(args.source, args.folder, target=args.target)
    print(f"wrote {rows} rows x {features} features ({dtype}) and their labels to {args.folder} "
          f"in {time.perf_counter() - started:.1f} s; train with --data {args.folder}")
    return 0


def _cmd_data_export(args) -> int:
    from .exporting import export

    rows, features, files = export(args.source, args.file, target=args.target)
    print(f"wrote {rows} rows x {features} features and their labels to {' and '.join(map(str, files))}")
    return 0


# -- the parser -----------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse with errors on one line (what is wrong, then where to look), exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _batch_size(text: str) -> int | str:
    """--batch-size: a whole number, or `full`."""
    if text.strip().lower() == "full":
        return "full"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a whole number nor full") from None


def build_parser() -> argparse.ArgumentParser:
    D = defaults.DEFAULTS
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
        epilog=_examples(f"{PROG} backends", f"{PROG} train", f"{PROG} train --data iris --save iris.npz",
                         f"{PROG} predict iris.npz iris", f"{PROG} evaluate iris.npz iris",
                         f"{PROG} COMMAND --help"),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name, help, examples):
        return sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                              parents=[debug], formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=_examples(*examples))

    p = command("backends", "list registered backends and whether they run here",
                [f"{PROG} backends", f"{PROG} backends --json"])
    p.add_argument("--json", action="store_true", help="print a JSON list (for scripts)")
    p.set_defaults(func=_cmd_backends)

    p = command("train", "train on a data set (default: digits, automatic backend)", [
        f"{PROG} train",
        f"{PROG} train --backend torch --hidden 128 64 --epochs 50",
        f"{PROG} train --data flowers.csv --target species --save flowers.npz",
        f"{PROG} train --data ~/mnist/train-images-idx3-ubyte.gz --hidden 256 --validation-split 0.1 "
        "--early-stopping 5 --plot curves.png",
        f"{PROG} train --data synthetic:n=60000,d=784,classes=10 --quiet --log-json log.jsonl",
    ])
    g = p.add_argument_group("data")
    g.add_argument("--data", default="digits", metavar="SOURCE",
                   help="digits (default), iris, wine, breast-cancer, synthetic:n=N,d=D,classes=K,seed=S, "
                        "a .npz (X, y), .csv (with a header) or *-idx3-ubyte[.gz] file, or a folder of "
                        ".npy files (X.npy, y.npy; read from disk, see: data convert)")
    g.add_argument("--target", metavar="COLUMN", help="a CSV's label column (default: the last)")
    g.add_argument("--test-size", type=float, default=D["test_size"], metavar="F",
                   help=f"fraction held out for the test (default: {D['test_size']}; stratified)")
    g.add_argument("--validation-split", type=float, default=D["validation_split"], metavar="F",
                   help="fraction of the training part held out for validation (default: none)")
    g = p.add_argument_group("model")
    g.add_argument("--recipe", choices=sorted(defaults.RECIPES), default=None,
                   help="article: the article's setup: one sigmoid hidden layer of 32, randn weights, "
                        "full-batch gradient descent with its learning rate (per sample, on a summed loss) "
                        "scaled to the data, 500 epochs; options given explicitly still win")
    g.add_argument("--hidden", type=int, nargs="+", default=None, metavar="N",
                   help=f"hidden layer sizes (default: {D['hidden_size']})")
    g.add_argument("--activation", default=None, choices=_choices("activation"),
                   help=f"hidden activation (default: {D['activation']})")
    g.add_argument("--init", default=None, choices=_choices("init"),
                   help=f"initial weights (default: {D['init']}: He for relu, Glorot otherwise)")
    g.add_argument("--dtype", default=None, choices=_choices("dtype"), help=f"(default: {D['dtype']})")
    g.add_argument("--backend", default=None, metavar="SPEC",
                   help="auto (default), a name, or name:device; $MLP_BACKEND also works")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="with --backend dask: the Dask scheduler to train on, e.g. tcp://HOST:8786, its "
                        "scheduler file (dask scheduler --scheduler-file FILE.json; waited for), or "
                        "'processes' for a local cluster of worker processes (default: a threads-only "
                        "local cluster in this process, started and closed)")
    g = p.add_argument_group("training")
    g.add_argument("--optimizer", default=None, choices=_choices("optimizer"),
                   help=f"(default: {D['optimizer']})")
    g.add_argument("--learning-rate", "--lr", type=float, default=None, metavar="LR",
                   help=f"on the mean loss of a batch (default: {D['learning_rate']})")
    g.add_argument("--batch-size", type=_batch_size, default=None, metavar="N|full",
                   help=f"rows per step, or full for full-batch gradient descent (default: {D['batch_size']})")
    g.add_argument("--epochs", type=int, default=None, metavar="N", help=f"(default: {D['epochs']})")
    g.add_argument("--l2", type=float, default=None, metavar="L", help=f"weight penalty (default: {D['l2']:g})")
    g.add_argument("--threads", type=_threads_arg, default=None, metavar="N",
                   help="CPU threads for training: a count, or auto (default: auto, or $MLP_BACKENDS_THREADS): "
                        "one thread for small networks, else the faster of one and all, measured while training")
    g.add_argument("--seed", type=int, default=None,
                   help=f"for the split, the weights and the shuffles (default: {D['seed']})")
    g.add_argument("--checkpoint", metavar="DIR",
                   help="save a checkpoint in DIR every --checkpoint-every epochs and on Ctrl-C")
    g.add_argument("--checkpoint-every", type=int, default=1, metavar="K", help="(default: 1)")
    g.add_argument("--resume", metavar="DIR",
                   help="continue the run checkpointed in DIR (same options), bit for bit")
    g.add_argument("--early-stopping", type=int, default=0, metavar="PATIENCE",
                   help="stop when the validation loss (the training loss without --validation-split) "
                        "has not improved for PATIENCE epochs, and keep the best parameters")
    g = p.add_argument_group("output")
    g.add_argument("--save", metavar="MODEL.npz", help="save the trained model (with its classes and scaling)")
    g.add_argument("--plot", metavar="CURVES.png", help="plot loss and accuracy per epoch (needs matplotlib)")
    g.add_argument("--log-json", metavar="FILE", help="write one JSON line per epoch")
    g.add_argument("--quiet", "-q", action="store_true", help="no per-epoch progress")
    p.set_defaults(func=_cmd_train)

    for name, help, examples in (
        ("predict", "predict labels (or probabilities) for the rows of a data source, as CSV",
         [f"{PROG} predict model.npz new.csv", f"{PROG} predict model.npz new.csv --proba --out proba.csv",
          f"{PROG} predict model.npz digits --backend torch"]),
        ("evaluate", "accuracy, per-class precision and recall, and the confusion matrix on labelled data",
         [f"{PROG} evaluate model.npz test.csv --target species", f"{PROG} evaluate model.npz digits"]),
    ):
        p = command(name, help, examples)
        p.add_argument("model", metavar="MODEL", help="a model file saved by train --save or MLP.save")
        p.add_argument("data", metavar="DATA", help="a built-in set, synthetic:..., or a .npz, .csv or IDX file; "
                       "the standardization saved with the model is applied")
        p.add_argument("--target", metavar="COLUMN",
                       help="a CSV's label column (default: the last, if the CSV has one more column than features)")
        p.add_argument("--backend", default=None, metavar="SPEC", help="where to run (default: auto)")
        if name == "predict":
            p.add_argument("--proba", action="store_true", help="one column of probabilities per class")
            p.add_argument("--out", metavar="FILE", help="write the CSV here instead of to stdout")
            p.set_defaults(func=_cmd_predict)
        else:
            p.set_defaults(func=_cmd_evaluate)

    p = command("export", "write a saved model's forward pass as an ONNX file that takes raw rows",
                [f"{PROG} export model.npz model.onnx"])
    p.add_argument("model", metavar="MODEL", help="a model file saved by train --save or MLP.save")
    p.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write (needs the onnx extra)")
    p.set_defaults(func=_cmd_export)

    p = command("data", "write data files: convert a source for training from disk, or export one",
                [f"{PROG} data convert big.csv big/", f"{PROG} train --data big/ --epochs 5",
                 f"{PROG} data export iris flowers.csv --target species",
                 f"{PROG} data export digits digits-images-idx3-ubyte.gz"])
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", parser_class=_Parser, required=True)
    p = data_sub.add_parser(
        "convert", parents=[debug], formatter_class=argparse.RawDescriptionHelpFormatter,
        help="convert a data source once into a folder of .npy files, which training reads from disk",
        description="Convert a data source (a .csv, .npz or IDX file, a built-in set) into a new folder "
                    "holding X.npy and y.npy, a block at a time. Training on that folder reads it "
                    "memory-mapped, a buffer at a time: data larger than memory train on one machine.",
        epilog=_examples(f"{PROG} data convert big.csv big/", f"{PROG} data convert flowers.csv f/ --target species",
                         f"{PROG} data convert ~/mnist/train-images-idx3-ubyte.gz mnist/"))
    p.add_argument("source", metavar="SOURCE", help="a .csv, .npz or *-idx3-ubyte[.gz] file (or a built-in set)")
    p.add_argument("folder", metavar="FOLDER", help="the new folder to write (must not exist yet)")
    p.add_argument("--target", metavar="COLUMN", help="a CSV's label column (default: the last)")
    p.set_defaults(func=_cmd_data_convert)

    p = data_sub.add_parser(
        "export", parents=[debug], formatter_class=argparse.RawDescriptionHelpFormatter,
        help="write a data source (a built-in set, synthetic:...) as a .csv, .npz or IDX file",
        description="Write a data source as a file that train, predict and evaluate read: a .csv with a "
                    "header (built-in sets keep their feature and class names), an .npz with X and y, or an "
                    "MNIST-format *-images-idx3-ubyte[.gz] file with its *-labels-idx1-ubyte[.gz] partner.",
        epilog=_examples(f"{PROG} data export iris flowers.csv --target species",
                         f"{PROG} data export synthetic:n=500,d=8,classes=3 own.npz",
                         f"{PROG} data export digits digits-images-idx3-ubyte.gz"))
    p.add_argument("source", metavar="SOURCE", help="a built-in set, synthetic:..., or a file")
    p.add_argument("file", metavar="FILE", help="the file to write: .csv, .npz or *-images-idx3-ubyte[.gz]")
    p.add_argument("--target", metavar="COLUMN", default="target", help="a CSV's label column name (default: target)")
    p.set_defaults(func=_cmd_data_export)

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
    except OSError as exc:  # the disk, not the input: full, read-only, permissions
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
