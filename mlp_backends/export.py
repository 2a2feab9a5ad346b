"""ONNX export: the same `nn.forward`, run on ndonnx, an array-API library that builds ONNX graphs.

No second, hand-written graph: the trained parameters become ndonnx constants,
the input an ndonnx argument, and nn.py's own `forward` and `softmax` trace
the network into ONNX operators. The saved standardization (`model.extra
["standardization"]`, which `mlp-backends train --save` records) is traced in
front of it, so the exported model takes raw rows, as `mlp-backends predict`
does.

The graph: input `X` (N rows, the model's features, the model's dtype);
outputs `probabilities` (N, classes) and `label` (N,), the int64 index of the
most probable class. The class names, when the model has them, are in the
file's metadata (`classes`, JSON), next to `standardized` and `producer`.
Needs the `onnx` extra: `pip install 'mlp-backends[onnx]'`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import nn
from .errors import InputError, UsageError


def _ndonnx():
    try:
        import ndonnx
        import onnx  # noqa: F401 - ndonnx builds onnx protos; saving needs it
    except ImportError as exc:
        raise UsageError(f"ONNX export needs ndonnx and onnx ({exc}); pip install 'mlp-backends[onnx]'") from exc
    return ndonnx


def to_onnx(model):
    """The model's forward pass (with its saved standardization) as an `onnx.ModelProto`."""
    ndx = _ndonnx()
    from array_api_compat import array_namespace

    dtype = np.dtype(model.dtype)
    X = ndx.argument(shape=("N", model.sizes[0]), dtype=getattr(ndx, model.dtype))
    xp = array_namespace(X)
    rows = X
    scaling = model.extra.get("standardization")
    if scaling:
        mean, scale = (np.asarray(scaling[k], dtype=dtype) for k in ("mean", "scale"))
        if mean.shape != (model.sizes[0],) or scale.shape != mean.shape:
            raise InputError(f"the model's standardization has {mean.shape[0]} features but the model takes "
                             f"{model.sizes[0]}; save the model again")
        rows = (X - ndx.asarray(mean)) / ndx.asarray(scale)
    params = [ndx.asarray(p.astype(dtype)) for p in model.get_params()]
    logits, _ = nn.forward(xp, params, rows, model.activation)
    proba = nn.softmax(xp, logits)
    label = xp.argmax(logits, axis=1)
    proto = ndx.build({"X": X}, {"probabilities": proba, "label": label})
    meta = {"producer": "mlp-backends", "standardized": json.dumps(bool(scaling)),
            "model": json.dumps(model.config())}
    if model.extra.get("classes") is not None:
        meta["classes"] = json.dumps([c if isinstance(c, (int, float, str)) else str(c)
                                      for c in model.extra["classes"]])
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "mlp-backends"
    return proto


def export_onnx(model, path) -> Path:
    """Write the model's forward pass to `path` as ONNX (whole or not at all); return the path."""
    import onnx

    from .io import atomic_write

    proto = to_onnx(model)
    onnx.checker.check_model(proto)
    path = Path(path)
    atomic_write(path, lambda f: f.write(proto.SerializeToString()))
    return path
