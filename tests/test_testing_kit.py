"""The conformance kit catches each kind of broken plugin, with a message that names the
broken promise and the fix, and passes a plugin that keeps the contract."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import uuid

import pytest

from mlp_backends.testing import CHECKS, backend_conformance_tests, check_backend

HEADER = """
    import dataclasses
    import types

    import numpy as np

    from backends.numpy import NumPyBackend
    from backends.array_api_strict import StrictBackend
    from mlp_backends.backend import Probe
"""

# name: (class body after `class Plugin(Base):`, base, device, the check that must fail, message pattern)
BROKEN = {
    "compile_changes_the_numbers": ("""
        def compile(self, step):  # doubles the learning rate: a wrong step
            opt = step.config["optimizer"]
            return step.rebuild(optimizer=dataclasses.replace(opt, learning_rate=2 * opt.learning_rate))
    """, "NumPyBackend", None, "check_compiled_steps_agree", r"compile\(step\).*differs from the NumPy float64"),
    "compile_returns_no_step": ("""
        def compile(self, step):
            return None
    """, "NumPyBackend", None, "check_compiled_steps_agree", r"returned None, not a callable"),
    "compile_writes_into_inputs_unannounced": ("""
        def compile(self, step):
            from backends.numpy_inplace import InPlaceUpdate
            in_place = step.rebuild(update=InPlaceUpdate(step.config["optimizer"]))
            return lambda *args: in_place(*args)  # hides mutates_params
    """, "NumPyBackend", None, "check_compiled_steps_agree", r"wrote into the parameters.*mutates_params = True"),
    "gather_takes_the_wrong_rows": ("""
        def compile(self, step):
            def compiled(*args):
                return step(*args)
            compiled.gather = lambda X, Y, idx: (X[:idx.shape[0]], Y[:idx.shape[0]])  # ignores the order
            return compiled
    """, "NumPyBackend", None, "check_compiled_steps_agree", r"compile\(step\): the loss .* differs"),
    "stage_batches_drops_the_short_last_batch": ("""
        def stage_batches(self, batches, dtype):
            for host, tag in batches:
                if host.shape[0] == 8:
                    yield self.asarray(host, dtype), tag
    """, "NumPyBackend", None, "check_stage_batches", r"gave tags \[0, 1, 2, 3\], not 0..4"),
    "stage_batches_hands_out_a_host_array": ("""
        def stage_batches(self, batches, dtype):
            return ((host, tag) for host, tag in batches)
    """, "StrictBackend", None, "check_stage_batches", r"gave a ndarray, not this backend's array"),
    "device_context_is_not_a_context": ("""
        def device_context(self):
            return None
    """, "NumPyBackend", None, "check_device_context", r"returned None; return a context manager"),
    "asarray_ignores_dtype": ("""
        def asarray(self, host, dtype=None):
            return np.asarray(host)
    """, "NumPyBackend", None, "check_asarray", r"returned dtype float64.*honour the dtype"),
    "asarray_turns_float64_into_float32": ("""
        def asarray(self, host, dtype=None):
            return np.asarray(host, dtype=np.float32)
    """, "NumPyBackend", None, "check_asarray", r"'float64'\) returned dtype float32"),
    "asarray_ignores_device": ("""
        def asarray(self, host, dtype=None):
            return self.xp.asarray(np.asarray(host), dtype=self.dtype(dtype))
    """, "StrictBackend", "device1", "check_asarray", r"put the array on .*CPU_DEVICE.*pass device=self.device"),
    "to_numpy_scrambles_values": ("""
        def to_numpy(self, x):
            x = np.asarray(x)
            return x.ravel(order="F").reshape(x.shape)  # column-major read of a row-major array
    """, "NumPyBackend", None, "check_to_numpy", r"other values than the array holds"),
    "to_numpy_loses_0d": ("""
        def to_numpy(self, x):
            return np.atleast_1d(np.asarray(x))
    """, "NumPyBackend", None, "check_to_numpy", r"0-d array\) has shape \(1,\), not \(\)"),
    "to_numpy_changes_dtype": ("""
        def to_numpy(self, x):
            return np.asarray(x, dtype=np.float64)
    """, "NumPyBackend", None, "check_to_numpy", r"of a float32 array returned float64"),
    "probe_raises": ("""
        @classmethod
        def probe(cls):
            raise RuntimeError("no driver")
    """, "NumPyBackend", None, "check_probe", r"probe\(\) raised RuntimeError: no driver; probe\(\) must never raise"),
    "probe_returns_a_bool": ("""
        @classmethod
        def probe(cls):
            return True
    """, "NumPyBackend", None, "check_probe", r"probe\(\) returned True; return mlp_backends.backend.Probe"),
    "probe_unusable_without_reason": ("""
        @classmethod
        def probe(cls):
            return Probe(False)
    """, "NumPyBackend", None, "check_probe", r"unusable without a reason"),
    "setup_fails_although_usable": ("""
        def _setup(self, device):
            raise OSError("the library needs a file it does not have")
    """, "NumPyBackend", None, "check_namespace", r"raised OSError.*although probe\(\) said it is usable"),
    "bad_name": ("""
        pass
    """, "NumPyBackend", None, "check_attributes", r"name is 'My Lib'"),
    "owns_everything": ("""
        def owns(self, x):
            return True
    """, "NumPyBackend", None, "check_owns", r"owns\(a list\) returned True"),
    "owns_nothing": ("""
        def owns(self, x):
            return False
    """, "NumPyBackend", None, "check_owns", r"owns\(\) returned False for an array made by its own asarray"),
    "owns_numpy_arrays_too": ("""
        def owns(self, x):
            return hasattr(x, "shape")
    """, "StrictBackend", None, "check_owns", r"owns\(\) returned True for a NumPy array"),
    "synchronize_returns_a_value": ("""
        def synchronize(self):
            return True
    """, "NumPyBackend", None, "check_synchronize", r"synchronize\(\) must return None"),
    "memory_stats_of_another_shape": ("""
        def memory_stats(self):
            return {"used": 1024}
    """, "NumPyBackend", None, "check_memory_stats", r"returned \{'used': 1024\}.*'in_use_bytes' and 'peak_bytes'"),
    "memory_peak_below_use": ("""
        def memory_stats(self):
            return {"in_use_bytes": 10, "peak_bytes": 5}
    """, "NumPyBackend", None, "check_memory_stats", r"peak \(5\) below what is in use \(10\)"),
    "out_of_memory_never_recognised": ("""
        def is_out_of_memory(self, exc):
            return False
    """, "NumPyBackend", None, "check_out_of_memory", r"is_out_of_memory\(MemoryError\(\)\) is not True"),
    "out_of_memory_always_recognised": ("""
        def is_out_of_memory(self, exc):
            return True
    """, "NumPyBackend", None, "check_out_of_memory", r"is_out_of_memory\(ValueError.*is not False"),
    "out_of_memory_misses_the_librarys_own": ("""
        def is_out_of_memory(self, exc):
            return type(exc) is MemoryError  # NumPy raises a subclass
    """, "NumPyBackend", None, "check_out_of_memory",
        r"allocating 1 PiB raised 'MemoryError: Unable to allocate.*does not recognise"),
    "namespace_computes_wrongly": ("""
        def _setup(self, device):
            import array_api_compat.numpy as xp
            ns = types.SimpleNamespace(**{k: getattr(xp, k) for k in dir(xp) if not k.startswith("__")})
            ns.exp = lambda x: xp.exp(x) * (1 + 1e-3)  # off in the third digit
            return ns, "cpu"

        def owns(self, x):
            return isinstance(x, np.ndarray)
    """, "NumPyBackend", None, "check_loss_and_gradients_agree", r"the loss .* differs from the NumPy float64"),
    "namespace_lacks_functions": ("""
        def _setup(self, device):
            import array_api_compat.numpy as xp
            ns = types.SimpleNamespace(**{k: getattr(xp, k) for k in dir(xp)
                                          if not k.startswith("__") and k not in ("take", "stack")})
            return ns, "cpu"
    """, "NumPyBackend", None, "check_namespace", r"lacks stack, take"),
}


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """plugin_module(source) -> a freshly imported module made of HEADER + source."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(source: str):
        name = f"plugin_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(HEADER) + textwrap.dedent(source))
        return importlib.import_module(name)

    return make


def _plugin(plugin_module, body: str, base: str, name: str = "brokenlib"):
    source = f"class Plugin({base}):\n    name = {name!r}\n" + textwrap.indent(textwrap.dedent(body), "    ")
    return plugin_module(source).Plugin


@pytest.mark.parametrize("kind", list(BROKEN))
def test_each_broken_plugin_is_caught_by_its_check(plugin_module, kind):
    body, base, device, check, message = BROKEN[kind]
    cls = _plugin(plugin_module, body, base, "My Lib" if kind == "bad_name" else "brokenlib")
    with pytest.raises(AssertionError, match=f"^{check}: .*{message}") as caught:
        check_backend(cls, device)
    assert "\n" not in str(caught.value)


def test_a_module_importing_its_array_library_at_import_time_is_caught(plugin_module):
    heavy = plugin_module("""
        import array_api_strict  # at import time: what the contract forbids

        class Plugin(NumPyBackend):
            name = "heavy"
    """).Plugin
    with pytest.raises(AssertionError, match=r"^check_import_is_light: importing plugin_\w+ imported "
                                             r"array_api_strict: import the array library inside probe"):
        check_backend(heavy)


def test_a_plugin_that_keeps_the_contract_passes_quietly(plugin_module):
    fine = _plugin(plugin_module, """
        def asarray(self, host, dtype=None):  # its own conversion, done right
            host = np.asarray(host)
            return np.array(host, dtype=dtype or host.dtype)
    """, "NumPyBackend", "finelib")
    assert check_backend(fine) is None
    assert check_backend(fine()) is None  # an instance works too


def test_an_unusable_backend_fails_check_backend_with_its_reason(plugin_module):
    absent = _plugin(plugin_module, """
        @classmethod
        def probe(cls):
            return Probe(False, "needs hardware this machine lacks")
    """, "NumPyBackend", "absent")
    with pytest.raises(AssertionError, match=r"^check_namespace: .*cannot run here \(needs hardware"):
        check_backend(absent)


def test_conformance_tests_are_one_per_check_and_dtype_and_skip_unusable(plugin_module):
    absent = _plugin(plugin_module, """
        @classmethod
        def probe(cls):
            return Probe(False, "needs hardware this machine lacks")
    """, "NumPyBackend", "absent")
    test = backend_conformance_tests(absent)
    (mark,) = [m for m in test.pytestmark if m.name == "parametrize"]
    ids = [p.id for p in mark.args[1]]
    assert ids[:3] == ["Plugin-check_attributes", "Plugin-check_probe", "Plugin-check_import_is_light"]
    assert "Plugin-check_fit_agrees-float64" in ids and len(ids) == len(CHECKS) + 4
    by_id = dict(zip(ids, mark.args[1]))
    test(*by_id["Plugin-check_probe"].values)  # holds without running the backend
    with pytest.raises(pytest.skip.Exception, match="absent: needs hardware"):
        test(*by_id["Plugin-check_asarray"].values)


def test_a_spec_that_is_not_registered_is_skipped_by_name():
    test = backend_conformance_tests("nosuchlib")
    (mark,) = [m for m in test.pytestmark if m.name == "parametrize"]
    assert all(m.kwargs["reason"] == "nosuchlib: not registered" for p in mark.args[1] for m in p.marks)


def test_importing_the_kit_imports_neither_pytest_nor_an_array_library():
    code = ("import sys, mlp_backends.testing\n"
            "names = ('pytest', 'torch', 'jax', 'array_api_strict', 'backends')\n"
            "print(','.join(m for m in names if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
