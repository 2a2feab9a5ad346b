"""Discovery through entry points, probing, and the choice of backend."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

import pytest

from mlp_backends import MLP, BackendError, get_backend, list_backends, registry, use_backend

BUILT_IN = {"numpy", "cupy", "torch", "jax", "array_api_strict"}


FAKE_GPU = """
    from backends.numpy import NumPyBackend
    from mlp_backends.backend import Probe

    class FakeGPU(NumPyBackend):
        '''NumPy pretending to be a GPU: lets auto's choice be tested without one.'''
        name = "fakegpu"
        priority = 1000

        @classmethod
        def probe(cls):
            return Probe(True, devices=("fake:0",), version="9.9", is_gpu=True)

        @property
        def is_gpu(self):
            return True

    class Unusable(NumPyBackend):
        name = "unusable"

        @classmethod
        def probe(cls):
            return Probe(False, "needs hardware this machine lacks")
"""


def test_every_built_in_backend_is_registered_with_its_facts():
    infos = {i.name: i for i in list_backends()}
    assert BUILT_IN <= set(infos)
    for info in infos.values():
        assert isinstance(info.usable, bool)
        assert info.usable == (info.reason == ""), info
        assert "mlp_backends.backends" not in info.source  # came from an entry point
    assert infos["numpy"].usable and infos["numpy"].devices == ("cpu",) and infos["numpy"].version


def test_installed_cupy_without_gpu_is_unusable_with_its_reason():
    info = {i.name: i for i in list_backends()}["cupy"]
    if info.usable:
        pytest.skip("this machine has a working CUDA GPU")
    try:
        import cupy  # noqa: F401
    except ImportError:
        assert "not installed" in info.reason
        return
    assert "CUDA" in info.reason and "installed" in info.reason
    assert info.version  # it imported: the probe did real work on the device to find out


def test_auto_falls_back_to_numpy_and_logs_why(caplog, monkeypatch):
    if any(i.usable and i.is_gpu for i in list_backends()):
        pytest.skip("a GPU backend is usable here, so auto picks it")
    monkeypatch.delenv("MLP_BACKEND", raising=False)
    with caplog.at_level(logging.INFO, logger="mlp_backends.registry"):
        backend = get_backend("auto")
    assert backend.name == "numpy"
    assert "no usable GPU backend" in caplog.text and "cupy" in caplog.text


def test_auto_prefers_a_usable_gpu_plugin(plugin_dir, caplog, monkeypatch):
    plugin_dir("fakeplug", FAKE_GPU, "fakegpu = fakeplug:FakeGPU\nunusable = fakeplug:Unusable\n")
    monkeypatch.delenv("MLP_BACKEND", raising=False)
    with caplog.at_level(logging.INFO, logger="mlp_backends.registry"):
        assert get_backend().name == "fakegpu"
    assert "chose fakegpu" in caplog.text


def test_a_third_party_plugin_trains_a_model(plugin_dir):
    plugin_dir("fakeplug", FAKE_GPU, "fakegpu = fakeplug:FakeGPU\n")
    import numpy as np

    model = MLP(3, 4, 2, backend="fakegpu")
    assert model.backend.name == "fakegpu"
    model.fit(np.eye(3), [0, 1, 1], epochs=3, batch_size=2)
    assert model.predict(np.eye(3)).shape == (3,)


def test_naming_an_unusable_backend_is_an_error_not_a_fallback(plugin_dir):
    plugin_dir("fakeplug", FAKE_GPU, "unusable = fakeplug:Unusable\n")
    with pytest.raises(BackendError, match=r"'unusable' is not usable here \(needs hardware.*usable here: .*numpy"):
        get_backend("unusable")


def test_an_unknown_name_is_an_error_naming_the_usable_ones():
    with pytest.raises(BackendError, match=r"unknown backend 'nosuch'.*usable here: .*numpy"):
        get_backend("nosuch")


def test_a_broken_plugin_is_listed_and_never_breaks_discovery(plugin_dir):
    plugin_dir("brokenplug", "raise RuntimeError('this plugin is broken on purpose')\n",
               "broken = brokenplug:Whatever\nnotaclass = json:dumps\n")
    infos = {i.name: i for i in list_backends()}
    assert not infos["broken"].usable
    assert "broken on purpose" in infos["broken"].reason
    assert not infos["notaclass"].usable and "not a mlp_backends.Backend" in infos["notaclass"].reason
    assert infos["numpy"].usable
    with pytest.raises(BackendError, match="plugin failed to load"):
        get_backend("broken")


def test_precedence_explicit_then_context_then_environment_then_auto(monkeypatch):
    monkeypatch.setenv("MLP_BACKEND", "array_api_strict")
    assert get_backend().name == "array_api_strict"
    with use_backend("torch" if _usable("torch") else "numpy") as ctx:
        assert get_backend() is ctx
        assert get_backend("numpy").name == "numpy"  # explicit beats the context
        assert MLP(2, 2, 2).backend is ctx
    assert get_backend().name == "array_api_strict"  # restored on exit
    monkeypatch.delenv("MLP_BACKEND")
    assert get_backend().name == registry.auto_choice()[0]


def test_a_bad_environment_variable_is_an_error(monkeypatch):
    monkeypatch.setenv("MLP_BACKEND", "nosuch")
    with pytest.raises(BackendError, match="unknown backend 'nosuch'"):
        get_backend()


def test_name_and_device_specs():
    assert get_backend("numpy:cpu").device == "cpu"
    strict = get_backend("array_api_strict:device1")
    assert "device1" in repr(strict.device)
    assert strict.spec == "array_api_strict:device1"
    with pytest.raises(BackendError, match="cannot use device 'gpu7'"):
        get_backend("numpy:gpu7")
    with pytest.raises(BackendError, match="'auto' takes no device"):
        get_backend("auto:1")


def test_use_backend_is_per_thread():
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def worker():
        with use_backend("array_api_strict"):
            inside.set()
            release.wait(10)
            seen["worker"] = get_backend().name

    thread = threading.Thread(target=worker)
    with use_backend("numpy"):
        thread.start()
        inside.wait(10)
        seen["main"] = get_backend().name
        release.set()
        thread.join()
    assert seen == {"worker": "array_api_strict", "main": "numpy"}


def test_importing_the_package_imports_no_backend_library():
    code = (
        "import sys, mlp_backends\n"
        "heavy = [m for m in ('cupy', 'torch', 'jax', 'array_api_strict', 'backends', 'sklearn') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _usable(name):
    return any(i.name == name and i.usable for i in list_backends())


GPU_MODULES = ("torch", "jax", "jaxlib", "cupy", "cupy_backends", "cupyx")

NO_DRIVER_AUTO = f"""
import sys
import numpy as np
from mlp_backends import MLP, drivers, get_backend
drivers.CHECKS.update({{kind: (lambda: False) for kind in drivers.CHECKS}})  # a machine with no driver
assert get_backend("auto").name == "numpy"
MLP(4, 3, 2, backend="auto").fit(np.eye(4), [0, 1, 1, 0], epochs=2, batch_size=2)
print(sorted({{m.split(".")[0] for m in sys.modules}} & set({GPU_MODULES!r})))
"""


def test_auto_without_a_gpu_driver_imports_no_gpu_library():
    env = {k: v for k, v in __import__("os").environ.items() if k != "MLP_BACKEND"}
    out = subprocess.run([sys.executable, "-c", NO_DRIVER_AUTO], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"auto imported {out.stdout.strip()} with no GPU driver on the machine"


DRIVER_GPU = FAKE_GPU + """
    PROBED = []

    class NeedsNvidia(FakeGPU):
        '''A GPU backend that declares the driver it needs and records each probe.'''
        name = "needsnvidia"
        gpu_drivers = ("nvidia",)

        @classmethod
        def probe(cls):
            PROBED.append(cls.name)
            return super().probe()
"""


@pytest.mark.parametrize("driver_here", [False, True])
def test_auto_probes_a_gpu_backend_only_when_its_driver_is_here(plugin_dir, monkeypatch, driver_here):
    plugin_dir("driverplug", DRIVER_GPU, "needsnvidia = driverplug:NeedsNvidia\n")
    monkeypatch.delenv("MLP_BACKEND", raising=False)
    from mlp_backends import drivers

    for kind in drivers.CHECKS:
        monkeypatch.setitem(drivers.CHECKS, kind, (lambda: driver_here) if kind == "nvidia" else (lambda: False))
    import driverplug

    driverplug.PROBED.clear()  # the module outlives one parametrization
    name, why = registry.auto_choice()
    if driver_here:
        assert name == "needsnvidia" and driverplug.PROBED == ["needsnvidia"]
    else:
        assert name == "numpy" and driverplug.PROBED == []
        assert "needsnvidia: no nvidia driver here, so not probed" in why
        # Listing still probes every backend and says why each is or is not usable.
        infos = {i.name: i for i in list_backends()}
        assert driverplug.PROBED == ["needsnvidia"] and infos["needsnvidia"].usable


def test_driver_checks_are_found_once_per_process_and_forgotten_by_refresh(monkeypatch):
    from mlp_backends import drivers

    calls = []
    monkeypatch.setitem(drivers.CHECKS, "nvidia", lambda: calls.append(1) or False)
    registry.refresh()
    assert not drivers.present("nvidia") and not drivers.present("nvidia") and calls == [1]
    registry.refresh()
    drivers.present("nvidia")
    assert calls == [1, 1]
    assert drivers.present("some-future-accelerator")  # unknown: never hides a GPU
    registry.refresh()
