"""Checks of the Backend contract's plumbing: probe, import, arrays in and out, devices, memory.

Each `check_*(backend, device=None)` takes a Backend subclass or an instance
and raises AssertionError naming the broken promise and the fix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

from ..backend import Backend, Probe

DTYPES = ("float32", "float64")

#: Top-level modules of array libraries a plugin module must not import when it is
#: imported (the array type's own library is added to these once the backend runs).
ARRAY_LIBRARIES = frozenset({
    "array_api_strict", "arrayfire", "cubed", "cupy", "cupy_backends", "dask", "distributed",
    "dpctl", "dpnp", "jax", "jaxlib", "marray", "mlx", "mxnet", "ndonnx", "numba", "onnxruntime",
    "paddle", "pandas", "pytensor", "sparse", "tensorflow", "torch", "xarray", "zarr",
})

#: The namespace functions the MLP's math (nn.py, optim.py, train.py, model.py) calls.
NAMESPACE = ("argmax", "arange", "asarray", "astype", "all", "exp", "isdtype", "isfinite", "log", "max",
             "maximum", "mean", "sqrt", "stack", "sum", "take", "tanh", "where", "zeros", "zeros_like",
             "float32", "int64", "nan")

_instances: dict = {}


def describe(backend) -> str:
    """How failure messages name a backend class or instance: "ClassName (registry name)"."""
    cls = backend if isinstance(backend, type) else type(backend)
    return f"{cls.__name__} ({getattr(cls, 'name', '') or 'no name'})"


def make_backend(backend, device=None) -> Backend:
    """The instance to check: `backend` itself if it is one, else `backend(device)`
    (made once per class and device), after its probe says it can run here."""
    if isinstance(backend, Backend):
        return backend
    key = (backend, device)
    if key not in _instances:
        found = backend.probe()
        if not (isinstance(found, Probe) and found.usable):
            reason = found.reason if isinstance(found, Probe) else f"probe() returned {found!r}"
            raise AssertionError(f"{describe(backend)}: probe() says it cannot run here ({reason}); "
                                 "the rest of the contract can only be checked where it runs")
        try:
            _instances[key] = backend(device)
        except Exception as exc:
            raise AssertionError(f"{describe(backend)}({device!r}) raised {type(exc).__name__}: {exc} although "
                                 "probe() said it is usable: _setup(device) must work wherever probe() "
                                 "says usable (or probe() must say why not)") from exc
    return _instances[key]


def supported_dtypes(backend, device=None) -> tuple[str, ...]:
    """float32, and float64 when the backend can make and add a float64 array."""
    b = make_backend(backend, device)
    found = ["float32"]
    try:
        x = b.asarray(np.zeros(2), "float64")
        b.to_numpy(x + x)
    except Exception:  # noqa: BLE001 - no float64 on this device (MLX's GPU, strict's no_float64)
        return tuple(found)
    return (*found, "float64")


def device_of(x):
    """The device an array says it lives on, or None when it does not say."""
    from array_api_compat import device

    try:
        return device(x)
    except Exception:  # noqa: BLE001 - a library array-api-compat does not know
        return getattr(x, "device", None)


def _same_device(got, want) -> bool:
    return got is None or got == want or str(got) == str(want)


def _class_of(backend) -> type:
    return backend if isinstance(backend, type) else type(backend)


# -- the class -----------------------------------------------------------------
def check_attributes(backend, device=None) -> None:
    """`name` is a lower-case identifier (it is what users type, before any ':device'),
    `priority` an int, `distributed` a bool."""
    cls = _class_of(backend)
    name = getattr(cls, "name", "")
    assert isinstance(cls, type) and issubclass(cls, Backend), (
        f"{cls!r} is not a subclass of mlp_backends.Backend: subclass it, the registry loads nothing else")
    assert isinstance(name, str) and name and name == name.lower() and name.isidentifier(), (
        f"{cls.__name__}.name is {name!r}: set it to a lower-case identifier such as 'mylib' "
        "(users type it in --backend and MLP_BACKEND, where ':' starts the device)")
    assert isinstance(cls.priority, int) and not isinstance(cls.priority, bool), (
        f"{describe(cls)}: priority is {cls.priority!r}; make it an int (auto takes the usable GPU backend "
        "with the highest)")
    assert isinstance(getattr(cls, "distributed", False), bool), f"{describe(cls)}: distributed must be a bool"


def check_probe(backend, device=None) -> None:
    """`probe()` never raises and returns a `Probe`: usable or a one-line reason, devices as strings."""
    cls = _class_of(backend)
    try:
        found = cls.probe()
    except Exception as exc:
        raise AssertionError(
            f"{describe(cls)}: probe() raised {type(exc).__name__}: {exc}; probe() must never raise: catch "
            "the library's errors (ImportError, a driver error) and return Probe(False, 'the reason')") from exc
    assert isinstance(found, Probe), (
        f"{describe(cls)}: probe() returned {found!r}; return mlp_backends.backend.Probe(usable, reason, devices, "
        "version, is_gpu)")
    assert isinstance(found.usable, bool) and isinstance(found.is_gpu, bool), (
        f"{describe(cls)}: Probe.usable and Probe.is_gpu must be bools, got {found.usable!r}, {found.is_gpu!r}")
    assert found.usable or (isinstance(found.reason, str) and found.reason.strip()), (
        f"{describe(cls)}: probe() said unusable without a reason; say why in one line (and what to install)")
    assert "\n" not in found.reason, f"{describe(cls)}: Probe.reason must be one line, got {found.reason!r}"
    assert isinstance(found.devices, tuple) and all(isinstance(d, str) for d in found.devices), (
        f"{describe(cls)}: Probe.devices must be a tuple of strings (what users put after ':'), "
        f"got {found.devices!r}")
    assert isinstance(found.version, str), f"{describe(cls)}: Probe.version must be a string, got {found.version!r}"


def check_import_is_light(backend, device=None) -> None:
    """Importing the plugin's module imports no array library (checked in a fresh interpreter)."""
    cls = _class_of(backend)
    module = cls.__module__
    assert module != "__main__", (
        f"{describe(cls)} is defined in __main__; define it in a module that its entry point names")
    heavy = set(ARRAY_LIBRARIES)
    try:  # the library of the backend's own arrays counts too (a failing _setup is check_namespace's)
        b = make_backend(backend, device)
        heavy.add(type(b.asarray(np.zeros(1), "float32")).__module__.split(".")[0])
    except Exception:  # noqa: BLE001 - unusable here, or broken in a way a later check names
        pass
    heavy.discard("numpy")  # mlp_backends itself imports NumPy
    code = textwrap.dedent(f"""
        import importlib, json, sys
        import mlp_backends
        before = set(sys.modules)
        importlib.import_module({module!r})
        print(json.dumps(sorted({{m.split(".")[0] for m in set(sys.modules) - before}})))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, f"importing {module} failed in a fresh interpreter: {out.stderr.strip()[-500:]}"
    imported = sorted(set(json.loads(out.stdout.strip().splitlines()[-1])) & heavy)
    assert not imported, (
        f"importing {module} imported {', '.join(imported)}: import the array library inside probe() and "
        "_setup(), not at the top of the module, so that `import mlp_backends` and listing backends stay "
        "fast and a broken library cannot break discovery")


def check_namespace(backend, device=None) -> None:
    """`xp` holds the array-API functions the MLP calls, and arrays made by `asarray` belong to it."""
    b = make_backend(backend, device)
    missing = [n for n in NAMESPACE if not hasattr(b.xp, n)]
    assert not missing, (
        f"{describe(b)}: the namespace _setup() returned ({getattr(b.xp, '__name__', b.xp)!r}) lacks "
        f"{', '.join(missing)}; return an array-API namespace (array_api_compat.array_namespace of an array)")
    x = b.asarray(np.ones((2, 2)), "float32")
    y = b.xp.sum(b.xp.exp(x @ x), axis=1)
    assert tuple(y.shape) == (2,), f"{describe(b)}: xp.sum(exp(x @ x), axis=1) of a 2x2 array has shape {y.shape}"


# -- arrays in and out -----------------------------------------------------------
def _host_samples() -> dict[str, np.ndarray]:
    grid = np.arange(15, dtype=np.float64).reshape(3, 5) / 7 - 1  # distinct values, non-square
    return {
        "a non-square 3x5 array": grid,
        "a non-contiguous (transposed) view": grid.T,
        "a strided slice": grid[:, ::2],
        "a 0-d array": np.asarray(2.5),
        "an empty 0x3 array": np.zeros((0, 3)),
        "a vector": grid[1],
        "an int64 array": np.arange(6).reshape(2, 3),
    }


def check_asarray(backend, device=None) -> None:
    """`asarray(host, dtype)` gives an array of exactly that dtype and the host's shape, on `device`."""
    b = make_backend(backend, device)
    for dtype in supported_dtypes(b):
        for what, host in _host_samples().items():
            x = b.asarray(host, dtype)
            assert b.owns(x) or not _owns_anything(b), (
                f"{describe(b)}: asarray({what}, {dtype!r}) returned a {type(x).__module__}.{type(x).__name__}, "
                "which owns() does not recognise as this backend's array")
            assert x.dtype == b.dtype(dtype), (
                f"{describe(b)}: asarray({what} of {host.dtype}, {dtype!r}) returned dtype {x.dtype}; asarray must "
                f"honour the dtype it is asked for: convert with host.astype({dtype!r}) (or pass dtype= to the "
                "library), since every backend must start training from the same numbers")
            assert tuple(x.shape) == host.shape, (
                f"{describe(b)}: asarray({what}) has shape {tuple(x.shape)}, not {host.shape}")
            where = device_of(x)
            assert _same_device(where, b.device), (
                f"{describe(b)}: asarray({what}) put the array on {where!r}, not on the backend's device "
                f"{b.device!r}: pass device=self.device (or allocate inside the device's context)")


def _owns_anything(b) -> bool:
    try:
        return b.owns(b.asarray(np.zeros(1), "float32"))
    except Exception:  # noqa: BLE001 - reported by check_owns
        return False


def check_to_numpy(backend, device=None) -> None:
    """`to_numpy(x)` gives a NumPy array with x's values, shape and dtype, for views and edge cases too."""
    b = make_backend(backend, device)
    xp = b.xp
    for dtype in supported_dtypes(b):
        cases = {what: (b.asarray(host, dtype), host) for what, host in _host_samples().items()}
        square = b.asarray(np.arange(12.0).reshape(3, 4), dtype)
        cases["a transposed array made on the device"] = (xp.permute_dims(square, (1, 0)) if hasattr(
            xp, "permute_dims") else square.T, np.arange(12.0).reshape(3, 4).T)
        cases["a column slice made on the device"] = (square[:, 1:3], np.arange(12.0).reshape(3, 4)[:, 1:3])
        cases["a sum reduced to 0-d on the device"] = (xp.sum(square), np.asarray(66.0))
        for what, (x, host) in cases.items():
            got = b.to_numpy(x)
            assert isinstance(got, np.ndarray), (
                f"{describe(b)}: to_numpy({what}) returned a {type(got).__name__}, not a numpy.ndarray")
            assert got.shape == host.shape, (
                f"{describe(b)}: to_numpy({what}) has shape {got.shape}, not {host.shape}: keep the shape "
                "(0-d stays 0-d, empty stays empty)")
            assert got.dtype == np.dtype(dtype), (
                f"{describe(b)}: to_numpy({what}) of a {dtype} array returned {got.dtype}")
            want = host.astype(dtype)
            assert np.array_equal(got, want), (
                f"{describe(b)}: to_numpy({what}) returned other values than the array holds "
                f"(first differences at {np.argwhere(got != want)[:3].tolist()}): copy it to the host "
                "in its logical order (np.asarray(x) or the library's own conversion), not its raw buffer")



def check_stage_batches(backend, device=None) -> None:
    """`stage_batches(batches, dtype)` hands out each host batch on the device, in order, with
    its tag, for a consumer that is done with a batch when it asks for the next."""
    b = make_backend(backend, device)
    rng = np.random.default_rng(0)
    for dtype in supported_dtypes(b):
        host = [rng.standard_normal((8, 5)).astype(dtype) for _ in range(4)] + [np.ones((3, 5), dtype)]
        got = []
        with b.device_context():
            for x, tag in b.stage_batches(((h, i) for i, h in enumerate(host)), dtype):
                assert b.owns(x), (
                    f"{describe(b)}: stage_batches gave a {type(x).__name__}, not this backend's array: "
                    "copy each host batch to the device (Backend.stage_batches: self.asarray(host, dtype))")
                got.append((tag, np.array(b.to_numpy(x))))  # read before asking for the next
        assert [tag for tag, _ in got] == list(range(len(host))), (
            f"{describe(b)}: stage_batches gave tags {[tag for tag, _ in got]}, not 0..{len(host) - 1}: "
            "hand out every batch once, in order, with its tag")
        for (tag, x), want in zip(got, host):
            assert x.shape == want.shape and x.dtype == np.dtype(dtype) and np.array_equal(x, want), (
                f"{describe(b)}: stage_batches' batch {tag} is not the host batch ({x.dtype} {x.shape}, "
                f"{dtype} {want.shape} expected, the short last one too)")

def check_owns(backend, device=None) -> None:
    """`owns(x)` is True for this backend's arrays and False for lists, scalars and other libraries' arrays."""
    b = make_backend(backend, device)
    x = b.asarray(np.ones(3), "float32")
    assert b.owns(x) is True, (
        f"{describe(b)}: owns() returned False for an array made by its own asarray; the model then copies "
        "the user's device arrays through the host")
    for what, other in (("a list", [1.0, 2.0]), ("a float", 1.0), ("None", None), ("a string", "abc")):
        assert b.owns(other) is False, (
            f"{describe(b)}: owns({what}) returned {b.owns(other)!r}; return True only for arrays of this "
            "backend's namespace (Backend.owns does that with array_api_compat.array_namespace)")
    if not isinstance(x, np.ndarray):
        assert b.owns(np.ones(3)) is False, (
            f"{describe(b)}: owns() returned True for a NumPy array, which is not this backend's array type")


def check_synchronize(backend, device=None) -> None:
    """`synchronize()` waits for queued work, returns None and may be called any time."""
    b = make_backend(backend, device)
    x = b.asarray(np.ones((64, 64)), "float32")
    for _ in range(3):
        x = x @ x / 64
    assert b.synchronize() is None, f"{describe(b)}: synchronize() must return None"
    assert b.synchronize() is None, f"{describe(b)}: synchronize() twice in a row must work"
    assert np.allclose(b.to_numpy(x), 1.0), f"{describe(b)}: (ones @ ones / 64) three times is not all ones"


def check_device_context(backend, device=None) -> None:
    """`device_context()` is a re-entrant context manager, and arrays made inside it without a
    device land on the backend's device where the library has a current device (CuPy)."""
    b = make_backend(backend, device)
    context = b.device_context()
    assert hasattr(context, "__enter__") and hasattr(context, "__exit__"), (
        f"{describe(b)}: device_context() returned {context!r}; return a context manager "
        "(contextlib.nullcontext() when the library needs none)")
    with context:
        with b.device_context():  # the model's methods nest it
            x = b.asarray(np.ones(3), "float32")
            y = b.xp.sum(x * x)
    assert float(b.to_numpy(y)) == 3.0, f"{describe(b)}: sum(ones(3) ** 2) inside device_context() is not 3"


def check_memory_stats(backend, device=None) -> None:
    """`memory_stats()` is None (host memory) or {"in_use_bytes": int, "peak_bytes": int}, peak >= in use."""
    b = make_backend(backend, device)
    stats = b.memory_stats()
    if stats is None:
        return
    assert isinstance(stats, dict) and set(stats) >= {"in_use_bytes", "peak_bytes"}, (
        f"{describe(b)}: memory_stats() returned {stats!r}; return None on the host, else a dict with "
        "'in_use_bytes' and 'peak_bytes'")
    for key in ("in_use_bytes", "peak_bytes"):
        value = stats[key]
        assert isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0, (
            f"{describe(b)}: memory_stats()[{key!r}] is {value!r}; it must be a whole number of bytes, 0 or more")
    assert stats["peak_bytes"] >= stats["in_use_bytes"], (
        f"{describe(b)}: memory_stats() reports a peak ({stats['peak_bytes']}) below what is in use "
        f"({stats['in_use_bytes']})")


def check_out_of_memory(backend, device=None) -> None:
    """`is_out_of_memory(exc)` is True for MemoryError and for the error the library raises on an
    impossible allocation (tried in a fresh interpreter: some libraries crash), False for other errors."""
    b = make_backend(backend, device)
    assert b.is_out_of_memory(MemoryError("out of host memory")) is True, (
        f"{describe(b)}: is_out_of_memory(MemoryError()) is not True; keep Backend.is_out_of_memory's cases "
        "(call super().is_out_of_memory(exc)) and add your library's")
    for exc in (ValueError("operands could not be broadcast together"), TypeError("unsupported operand"),
                KeyError("x"), ZeroDivisionError("division by zero")):
        assert b.is_out_of_memory(exc) is False, (
            f"{describe(b)}: is_out_of_memory({type(exc).__name__}({str(exc)!r})) is not False; the model "
            "would then tell the user to shrink the batch for a bug that is not about memory")
    cls = _class_of(backend)
    if cls.__module__ == "__main__" or not isinstance(backend, type):
        return  # the fresh interpreter needs the class by import
    code = textwrap.dedent(f"""
        import importlib, json
        cls = getattr(importlib.import_module({cls.__module__!r}), {cls.__qualname__!r})
        b = cls({device!r})
        try:
            x = b.xp.zeros((1 << 24, 1 << 24), dtype=b.dtype("float32"))  # 1 PiB
            b.synchronize()
            b.to_numpy(x[:1, :1])
        except BaseException as exc:
            print(json.dumps({{"error": f"{{type(exc).__name__}}: {{str(exc)[:200]}}",
                               "recognised": bool(b.is_out_of_memory(exc))}}))
        else:
            print(json.dumps({{"error": None}}))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    if out.returncode != 0 or not out.stdout.strip():
        return  # the library crashed on it (MLX does): nothing a plugin can recognise
    found = json.loads(out.stdout.strip().splitlines()[-1])
    error = found["error"] or ""
    looks_like_memory = any(w in error.lower() for w in ("memory", "alloc", "resource_exhausted"))
    assert found["recognised"] or not looks_like_memory, (
        f"{describe(cls)}: allocating 1 PiB raised {error!r}, which is_out_of_memory() does not recognise; "
        "recognise it (by type, or by its message when the library has no type for it) so that users get "
        "the sizes and what to try instead of a traceback")
