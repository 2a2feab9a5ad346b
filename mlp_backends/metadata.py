"""What a model file keeps besides its parameters: the facts `train --save` records in
`MLP.extra`, which `preprocessing.py` applies when the model is loaded."""

from __future__ import annotations


def saved_facts(split, training: dict) -> dict:
    """A model's `extra` for a run on `split` (a `data.Split`): the class labels, the
    standardization, the feature and label column names, and `training` (how it was trained)."""
    return {
        "classes": split.classes,
        "standardization": split.standardizer.as_dict() if split.standardizer else None,
        "feature_names": split.feature_names,
        "target": split.target,
        "training": training,
    }
