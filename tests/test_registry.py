"""Discovery through entry points, probing, and the choice of backend."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

import pytest

from mlp_backends import BackendError, MLP, get_backend, list_backends, registry, use_backend

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
