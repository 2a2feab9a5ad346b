"""Training curves as a PNG (matplotlib is optional: a missing one says how to install it)."""

from __future__ import annotations

import sys

import pytest

from mlp_backends import MLP, InputError
from mlp_backends.plot import plot_history

pytest.importorskip("matplotlib")


def test_curves_png_with_validation(tmp_path, blobs):
    import matplotlib.image

    X, y = blobs
    history = MLP(5, 8, 3, backend="numpy").fit(X[:40], y[:40], epochs=5, validation_data=(X[40:], y[40:]))
    path = plot_history(history, tmp_path / "c.png", title="blobs", kept_epoch=3)
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (400, 1000)  # 10 x 4 inches at 100 dpi
    assert image[..., :3].std() > 0.05     # something is drawn, not a blank page
    assert [p.name for p in tmp_path.iterdir()] == ["c.png"]  # no temporary left


def test_missing_matplotlib_says_how_to_install_it(tmp_path, blobs, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    history = MLP(5, 8, 3, backend="numpy").fit(*blobs, epochs=1)
    with pytest.raises(InputError, match=r"pip install 'mlp-backends\[plot\]'"):
        plot_history(history, tmp_path / "c.png")


def test_missing_folder(tmp_path, blobs):
    history = MLP(5, 8, 3, backend="numpy").fit(*blobs, epochs=1)
    with pytest.raises(InputError, match="does not exist"):
        plot_history(history, tmp_path / "nope" / "c.png")
