"""The one way a test says it needs a backend: the `requires_backend` marker (conftest.py)."""

from __future__ import annotations

import pytest
from conftest import backend_params, skip_unless_usable, with_backend

from mlp_backends import registry


def test_an_unknown_backend_skips_with_the_registrys_reason():
    with pytest.raises(pytest.skip.Exception, match="no-such-backend: no plugin registers this name"):
        skip_unless_usable("no-such-backend")


def test_a_usable_backend_does_not_skip():
    skip_unless_usable("numpy")  # returns: numpy is always usable


@pytest.mark.requires_backend("numpy")
def test_the_marker_lets_a_usable_backend_run(request):
    assert request.node.get_closest_marker("requires_backend").args == ("numpy",)


def test_backend_params_are_built_without_probing_any_backend(monkeypatch):
    def probe(*args, **kwargs):
        raise AssertionError("a backend was probed while building test parameters")

    monkeypatch.setattr(registry, "backend_info", probe)
    monkeypatch.setattr(registry, "list_backends", probe)
    params = backend_params(("float32",))
    ids = [p.id for p in params]
    assert "numpy-float32" in ids and "array_api_strict:device1-float32" in ids
    assert not any(i.startswith("dask") for i in ids)  # distributed: tested against its own cluster
    for p in params:
        (mark,) = p.marks
        assert mark.name == "requires_backend" and p.values[0][0].startswith(mark.args[0])


def test_with_backend_marks_a_param_and_names_it():
    p = with_backend("torch", "torch", "in_place")
    assert p.values == ("torch", "in_place") and p.id == "torch"
    assert [(m.name, m.args) for m in p.marks] == [("requires_backend", ("torch",))]
