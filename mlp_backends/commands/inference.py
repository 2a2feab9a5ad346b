"""The commands that use a saved model: `predict`, `evaluate` and `export`."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import InputError
from ..metrics import class_table, confusion_matrix


def load_for_inference(args):
    """The model (which applies its saved standardization and classes itself, exactly as
    `MLP.load` in Python does), the data's raw rows as a row source read a block at a time
    (so that standardizing needs no second copy of the data), the raw labels (or None),
    and the class labels of the outputs."""
    import numpy as np

    from .. import data
    from ..model import MLP

    data.check_source(args.data, args.target)  # before the model file and the backend
    model = MLP.load(args.model, backend=args.backend)
    ds = data.read(args.data, target=args.target, n_features=model.sizes[0], dtype=model.dtype,
                   features=model.extra.get("feature_names"), saved_target=model.extra.get("target"))
    if ds.X.shape[1] != model.sizes[0]:
        raise InputError(f"{args.data} has {ds.X.shape[1]} features per row but the model takes {model.sizes[0]}; "
                         "pass data with the columns it was trained on")
    classes = model.classes if model.classes is not None else np.arange(model.sizes[-1])
    return model, data.outofcore.as_source(ds.X), ds.y, classes


def predict(args) -> int:
    """Labels (or probabilities with --proba) for the data's rows, as CSV on stdout or in --out."""
    import csv
    import io

    from ..io import check_outputs

    check_outputs({"--out": args.out}, {"MODEL": args.model, "DATA": args.data})
    model, X, _, classes = load_for_inference(args)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if args.proba:
        writer.writerow([str(c) for c in classes])
        writer.writerows([f"{p:.6g}" for p in row] for row in model.predict_proba(X))
    else:
        writer.writerow(["label"])
        writer.writerows([c] for c in model.predict(X).tolist())
    if args.out:
        from ..io import atomic_write

        atomic_write(args.out, lambda f: f.write(out.getvalue()), mode="w")
        print(f"wrote {len(X)} predictions to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(out.getvalue())
    return 0


def evaluate(args) -> int:
    """Accuracy, loss, per-class precision and recall, and the confusion matrix on labelled data."""
    import numpy as np

    from ..preprocessing import label_indices

    model, X, y_raw, classes = load_for_inference(args)
    if y_raw is None:
        raise InputError(f"{args.data} has no labels; evaluate needs them (use --target to name the label column)")
    y = label_indices(y_raw, classes, what=args.data)
    pred = label_indices(model.predict(X), classes)
    confusion = confusion_matrix(y, pred, len(classes))
    correct = int(np.trace(confusion))
    print(f"data: {args.data}, {len(y)} samples; model: {model}")
    print(f"accuracy: {correct / len(y):.4f} ({correct}/{len(y)})")
    print(f"loss: {model.loss(X, y_raw):.4f}")
    print()
    print("\n".join(class_table(confusion, [str(c) for c in classes])))
    return 0


def export(args) -> int:
    """The saved model's forward pass, with its standardization, as an ONNX file."""
    from ..io import check_outputs
    from ..model import MLP

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


def add_arguments(p, predict: bool) -> None:
    """The options of predict (with --proba and --out) or evaluate: a model file and data."""
    p.add_argument("model", metavar="MODEL", help="a model file saved by train --save or MLP.save")
    p.add_argument("data", metavar="DATA", help="a built-in set, synthetic:..., or a .npz, .csv or IDX file; "
                   "the standardization saved with the model is applied")
    p.add_argument("--target", metavar="COLUMN",
                   help="a CSV's label column (default: the last, if the CSV has one more column than features)")
    p.add_argument("--backend", default=None, metavar="SPEC", help="where to run (default: auto)")
    if predict:
        p.add_argument("--proba", action="store_true", help="one column of probabilities per class")
        p.add_argument("--out", metavar="FILE", help="write the CSV here instead of to stdout")
