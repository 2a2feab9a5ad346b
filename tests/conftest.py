"""Fixtures that run a test on every registered backend, in both dtypes, and the one
way to say that a test needs a backend: `@pytest.mark.requires_backend("torch")` (on a
test, a module's `pytestmark`, or a `pytest.param`).

An unusable backend is skipped with the registry's own reason (pytest runs
with -rs, so every skip and its reason shows in the summary). Backends are
probed lazily, when the first test that needs one is set up: collecting the
tests loads the plugins' classes but probes none of them.
"""

from __future__ import annotations

import gzip
import os
import struct
import textwrap

import numpy as np
import pytest

from mlp_backends import get_backend, registry
from mlp_backends.testing import tolerance  # noqa: F401 - tests import it from here


def pytest_sessionstart(session):
    """CI names the backends that must run ($MLP_BACKENDS_REQUIRE): a skip there is a failure."""
    required = [n for n in os.environ.get("MLP_BACKENDS_REQUIRE", "").split(",") if n]
    infos = [registry.backend_info(n) for n in required]
    missing = [f"{i.name}: {i.reason}" for i in infos if not i.usable]
    if missing:
        raise pytest.UsageError("required backends are not usable: " + "; ".join(missing))


def skip_unless_usable(*names: str) -> None:
    """Skip, with the registry's reason, unless each named backend is usable here (probing
    only those); what the `requires_backend` marker does, for fixtures to call."""
    for name in names:
        info = registry.backend_info(name)
        if not info.usable:
            pytest.skip(f"{name}: {info.reason}")


def pytest_runtest_setup(item):
    """`requires_backend(name, ...)` marks: see skip_unless_usable."""
    for mark in item.iter_markers("requires_backend"):
        skip_unless_usable(*mark.args)


def with_backend(name: str, *args, **kwargs):
    """A `pytest.param` that needs backend `name` (its id is `name` unless given)."""
    kwargs.setdefault("id", name)
    return pytest.param(*(args or (name,)), marks=pytest.mark.requires_backend(name), **kwargs)


def needs(module: str):
    """Import `module` or skip the test, unless $MLP_BACKENDS_REQUIRE_MODULES names it
    (CI does, for the optional libraries it installs): then its absence fails."""
    required = os.environ.get("MLP_BACKENDS_REQUIRE_MODULES", "").split(",")
    if module in required:
        return __import__(module)
    return pytest.importorskip(module, reason=f"{module} is not installed (the onnx extra)")


# The strict library's second device proves that nothing falls back to the default device.
EXTRA_DEVICES = {"array_api_strict": ["array_api_strict:device1"]}


def is_own(info) -> bool:
    """Whether a registered backend is one of this distribution's; an installed third-party
    plugin (examples/mlx_backend) is tested by its own suite, not by this one's fixtures."""
    return info.source.endswith("(mlp-backends)")


def backend_params(dtypes):
    """pytest params (spec, dtype) for every array backend of this project and each of
    `dtypes`, each marked `requires_backend`: an unusable one skips with the registry's
    reason when its test is set up (nothing is probed while collecting)."""
    params = []
    # A distributed backend (dask) is not an array library for the model: its
    # parameters are NumPy on the driver and its training needs a cluster, so
    # the array-level suite would only re-test numpy, slowly. It has its own
    # tests (tests/test_distributed.py) against a LocalCluster.
    plugins = registry.discover_plugins()
    own = [(name, cls) for name, (cls, source) in plugins.items()
           if source.endswith("(mlp-backends)") and not getattr(cls, "distributed", False)]
    # In list_backends' order: GPU-capable first, then by priority.
    for name, _ in sorted(own, key=lambda row: (-getattr(row[1], "priority", 0), row[0])):
        for spec in [name, *EXTRA_DEVICES.get(name, [])]:
            for dtype in dtypes:
                params.append(with_backend(name, (spec, dtype), id=f"{spec}-{dtype}"))
    return params


@pytest.fixture(params=backend_params(("float32", "float64")))
def backend(request):
    """(Backend, dtype) for every registered backend and both dtypes."""
    spec, dtype = request.param
    return get_backend(spec), dtype


@pytest.fixture(params=backend_params(("float32",)))
def backend32(request):
    """Every registered backend in float32 only (for the slower, training-sized tests)."""
    spec, _ = request.param
    return get_backend(spec)


def usable_or_strict(name: str) -> str:
    """`name` where that backend runs here, else array_api_strict (in the test extra):
    a test that wants "another backend" still runs on a machine without `name`."""
    return name if registry.backend_info(name).usable else "array_api_strict"


def step_problem(backend, dtype, sizes=(5, 7, 6, 3), n=40, seed=0):
    """Small random parameters, X and one-hot Y on `backend`, for driving a step by hand."""
    rng = np.random.default_rng(seed)
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        params += [rng.standard_normal((a, b)) / np.sqrt(a), rng.standard_normal(b) * 0.1]
    X = rng.standard_normal((n, sizes[0]))
    Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)]
    to = lambda a: backend.asarray(a, dtype)  # noqa: E731
    return [to(p) for p in params], to(X), to(Y)


def finite_difference_grads(model, X, y, eps=1e-6, per_array=None):
    """Central differences of model.loss_and_gradients' loss, for the first
    `per_array` entries of each parameter array (all when None); the rest stay 0."""
    params = model.get_params()
    grads = []
    for i, p in enumerate(params):
        g = np.zeros_like(p)
        for idx in list(np.ndindex(p.shape))[:per_array]:
            values = []
            for sign in (1, -1):
                trial = [q.copy() for q in params]
                trial[i][idx] += sign * eps
                model.set_params(trial)
                values.append(model.loss_and_gradients(X, y)[0])
            g[idx] = (values[0] - values[1]) / (2 * eps)
        grads.append(g)
    model.set_params(params)
    return grads


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits, a fixed stratified split, standardized on the train part."""
    from mlp_backends import data

    return data.load("digits", seed=0)


@pytest.fixture
def blobs():
    """A small, well-separated 3-class problem, cheap enough for every test."""
    rng = np.random.default_rng(1)
    centers = rng.normal(scale=3.0, size=(3, 5))
    y = rng.integers(0, 3, size=60)
    X = centers[y] + rng.normal(size=(60, 5))
    return X, y


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """Put a third-party distribution on sys.path, as `pip install` would, and forget it after."""

    def install(dist: str, module_source: str, entry_points: str):
        (tmp_path / f"{dist}.py").write_text(textwrap.dedent(module_source))
        info = tmp_path / f"{dist}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(
            "[mlp_backends.backends]\n" + textwrap.dedent(entry_points)
        )
        monkeypatch.syspath_prepend(str(tmp_path))
        registry.refresh()

    yield install
    monkeypatch.undo()
    registry.refresh()


@pytest.fixture(scope="session")
def write_idx():
    """write_idx(path, array, code=0x08, compress=False): an MNIST-format IDX file
    as the format defines it: magic, big-endian dims, then the data."""

    def write(path, array: np.ndarray, code: int = 0x08, compress: bool = False) -> None:
        big = array.astype(array.dtype.newbyteorder(">"))
        raw = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + big.tobytes()
        with (gzip.open if compress else open)(path, "wb") as f:
            f.write(raw)

    return write
