"""`mlp-backends train`: train on a data set, report the scores, save the model, the plot
and the log. Every option is checked before the backend starts or the data load."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from .. import defaults, validation
from ..errors import InputError, TrainingInterrupted, UsageError
from ..metadata import saved_facts
from .common import PROG, choose_backend


def _threads_arg(text: str):
    """--threads: a whole number of at least 1, or auto (argparse turns the error into exit 2)."""
    from ..threads import requested

    try:
        return requested("auto" if text.strip().lower() == "auto" else text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a thread count: give a whole number of at least 1, "
                                         "or auto") from exc


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


def settings(args) -> dict:
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


def run(args) -> int:
    """Check every option, train, report the scores, then write what was asked for; exit 1
    when training diverged (the run did not do what was asked: scripts must notice)."""
    # Everything the options alone can tell is checked before the backend starts or data load.
    s = settings(args)
    checkpoint = _check_before_training(args, s)
    backend = _training_backend(args, s)
    ds, model = _data_and_model(args, s, backend)
    callbacks, stopper = _callbacks(args, s)
    validation_data = None if ds.X_val is None else (ds.X_val, ds.y_val)
    started = time.perf_counter()
    history = _fit(args, s, model, ds, callbacks, validation_data, checkpoint)
    _report(model, ds, validation_data, history, time.perf_counter() - started)
    _write_outputs(args, s, ds, model, history, backend, stopper)
    return 1 if history.diverged else 0


def _check_before_training(args, s: dict) -> str | None:
    """Refuse, before any work, outputs that cannot be written, a missing extra, a data
    source that is not there, layers too large, and a checkpoint folder of another run;
    the checkpoint folder of this run, or None."""
    from .. import data
    from ..checkpoint import FILE, Checkpoint
    from ..io import check_outputs
    from ..network import check_network_fits

    folder = args.resume or args.checkpoint
    check_outputs({"--save": args.save, "--plot": args.plot, "--log-json": args.log_json,
                   "--checkpoint": folder and str(Path(folder) / FILE)},
                  {"--data": args.data}, new_folders=("--checkpoint",))
    if args.plot:
        from ..plot import require_matplotlib

        require_matplotlib()  # before training, so a missing extra costs nothing
    data.check_source(args.data, args.target)
    check_network_fits([1, *s["hidden_size"], 2], s["dtype"],  # before the data are read: a lower bound
                       what=f"--hidden {' '.join(map(str, s['hidden_size']))} alone")
    if args.resume and args.checkpoint and Path(args.resume) != Path(args.checkpoint):
        raise InputError("--resume DIR already saves its checkpoints in DIR; drop --checkpoint or name the same folder")
    checkpoint = args.resume or args.checkpoint
    if args.resume and not Checkpoint(args.resume).exists():
        raise InputError(f"no checkpoint in {args.resume}; start a run with --checkpoint {args.resume} first")
    if checkpoint:
        Checkpoint(checkpoint).refuse_another_run(bool(args.resume))
    return checkpoint


def _training_backend(args, s: dict):
    """The backend --backend (or --scheduler) names, or auto's choice; says which and why."""
    spec = args.backend
    if args.scheduler:  # a Dask cluster: the dask backend at that address
        if (spec or "dask") != "dask":
            raise InputError(f"--scheduler trains on a Dask cluster; use it with --backend dask, not {spec!r}")
        spec = f"dask:{_scheduler_address(args.scheduler)}"
    backend, why = choose_backend(spec)
    if not backend.supports(s["dtype"]):
        raise InputError(f"backend {backend.spec} has no {s['dtype']} on its device; "
                         "use --dtype float32 or another backend or device")
    print(f"backend: {backend.spec} ({why})")
    return backend


def _data_and_model(args, s: dict, backend):
    """The split data and a new model sized to them; the recipe's learning rate, scaled to the rows."""
    from .. import data
    from ..model import MLP

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
    return ds, model


def _callbacks(args, s: dict):
    """The progress bar, the JSON log and early stopping, as the options ask; and the stopper."""
    from ..callbacks import EarlyStopping, JsonLog, ProgressBar

    callbacks = []
    if not args.quiet:
        callbacks.append(ProgressBar(s["epochs"]))
    if args.log_json:
        callbacks.append(JsonLog(args.log_json, append=bool(args.resume)))
    stopper = EarlyStopping(patience=args.early_stopping) if args.early_stopping else None
    if stopper:
        callbacks.append(stopper)
    return callbacks, stopper


def _fit(args, s: dict, model, ds, callbacks, validation_data, checkpoint):
    """model.fit with the run's settings; Ctrl-C says that --save was not written."""
    try:
        return model.fit(ds.X_train, ds.y_train, epochs=s["epochs"], batch_size=s["batch_size"],
                         learning_rate=s["learning_rate"], optimizer=s["optimizer"],
                         callbacks=callbacks, validation_data=validation_data,
                         checkpoint=checkpoint, checkpoint_every=args.checkpoint_every,
                         resume=bool(args.resume), threads=args.threads)
    except TrainingInterrupted as exc:
        if not args.save:
            raise
        kept = " (the file already there is kept)" if Path(args.save).exists() else ""
        raise TrainingInterrupted(f"{exc}; the model was not saved to {args.save}{kept}") from None


def _report(model, ds, validation_data, history, wall: float) -> None:
    """Why training stopped early, each part's accuracy and loss, the threads and the time."""
    if history.diverged:
        print(f"{PROG}: {history.stopped_early}", file=sys.stderr)
    elif history.stopped_early:
        print(history.stopped_early)
    parts = [("train", ds.X_train, ds.y_train)]
    if validation_data is not None:
        parts.append(("validation", *validation_data))
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


def _write_outputs(args, s: dict, ds, model, history, backend, stopper) -> None:
    """--save (never over an earlier model when this run diverged) and --plot."""
    if args.save and history.diverged and Path(args.save).exists():
        print(f"{PROG}: kept {args.save} as it was: this run diverged, so its model was not saved over it",
              file=sys.stderr)
    elif args.save:
        model.extra = saved_facts(ds, training_record(args, s, history, backend))
        model.save(args.save)
        print(f"saved model: {args.save}")
    if args.plot:
        from ..plot import plot_history

        kept = stopper.best_epoch if stopper and "restored" in history.stopped_early else None
        plot_history(history, args.plot, title=f"{ds.name}: {model}", kept_epoch=kept)
        print(f"saved plot: {args.plot}")


def training_record(args, s: dict, history, backend) -> dict:
    """How the saved model was trained: the command's data options and settings, the epochs
    run and the backend (kept in the model file's `extra["training"]`)."""
    return {
        "data": args.data, "target": args.target, "test_size": args.test_size,
        "validation_split": args.validation_split, "epochs": s["epochs"], "epochs_run": len(history),
        "batch_size": s["batch_size"], "learning_rate": s["learning_rate"],
        "optimizer": s["optimizer"], "l2": s["l2"], "seed": s["seed"], "recipe": args.recipe,
        "early_stopping": args.early_stopping, "backend": backend.spec,
    }


def _batch_size(text: str) -> int | str:
    """--batch-size: a whole number, or `full`."""
    if text.strip().lower() == "full":
        return "full"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a whole number nor full") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    """train's options, in the groups --help shows: data, model, training, output."""
    D = defaults.DEFAULTS
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
