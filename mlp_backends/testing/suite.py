"""`check_backend` (every check, in order) and `backend_conformance_tests` (the same as pytest tests)."""

from __future__ import annotations

from ..backend import Probe
from ..errors import one_line
from .agreement import (
    check_compiled_steps_agree,
    check_fit_agrees,
    check_loss_and_gradients_agree,
    check_plain_steps_agree,
)
from .contract import (
    check_asarray,
    check_attributes,
    check_device_context,
    check_import_is_light,
    check_memory_stats,
    check_namespace,
    check_out_of_memory,
    check_owns,
    check_probe,
    check_stage_batches,
    check_synchronize,
    check_to_numpy,
    supported_dtypes,
)

#: Every check, cheapest first; each takes (backend class or instance, device=None).
CHECKS = (
    check_attributes,
    check_probe,
    check_import_is_light,
    check_namespace,
    check_asarray,
    check_to_numpy,
    check_owns,
    check_synchronize,
    check_device_context,
    check_stage_batches,
    check_memory_stats,
    check_out_of_memory,
    check_loss_and_gradients_agree,
    check_plain_steps_agree,
    check_compiled_steps_agree,
    check_fit_agrees,
)

#: The checks that also hold for a backend that cannot run here.
WITHOUT_RUNNING = (check_attributes, check_probe, check_import_is_light)
#: The checks that take `dtype=` (the pytest tests run them once per dtype).
BY_DTYPE = (check_loss_and_gradients_agree, check_plain_steps_agree, check_compiled_steps_agree,
            check_fit_agrees)


def check_backend(backend, device=None) -> None:
    """Run the whole Backend contract against `backend` (a Backend subclass or instance) on
    `device`; raise AssertionError at the first broken promise, saying which check failed, what
    the plugin did and how to fix it. Return None when every promise holds.

    A backend whose probe says it cannot run here fails with that reason: the
    contract can only be checked where the backend runs.
    """
    for check in CHECKS:
        try:
            check(backend, device)
        except AssertionError as exc:
            raise AssertionError(f"{check.__name__}: {exc}") from exc
        except Exception as exc:  # the plugin's own code failed inside the check
            promise = (check.__doc__ or "").strip().splitlines()[0]
            raise AssertionError(f"{check.__name__}: {label_of(backend, device)} raised {one_line(exc)}; "
                                 f"the promise: {promise}") from exc


def label_of(backend, device) -> str:
    """A test id for a backend class or instance on a device: "ClassName" or "ClassName:device"."""
    cls = backend if isinstance(backend, type) else type(backend)
    return cls.__name__ + (f":{device}" if device else "")


def _resolve(item, device):
    """(label, class or instance, device) for a class, an instance or a registry spec."""
    if not isinstance(item, str):
        return label_of(item, device), item, device
    from ..registry import discover_plugins, parse_spec

    name, spec_device = parse_spec(item)
    plugins = discover_plugins()
    if name not in plugins or plugins[name][0] is None:
        return item, None, spec_device
    return item, plugins[name][0], spec_device if spec_device is not None else device


def backend_conformance_tests(*backends, device=None):
    """A pytest test function running every check on each of `backends`: assign it to a
    `test_*` name in a test module, e.g.

        test_my_backend = backend_conformance_tests(MyBackend)

    Each item is a Backend subclass, an instance, or a registry spec ("numpy",
    "array_api_strict:device1"). One test per backend and check, with ids like
    `MyBackend-check_asarray`; a backend whose probe says it cannot run here is
    skipped with its reason, except for the checks that hold anyway (probe, import).
    """
    import pytest

    params = []
    for item in backends:
        label, backend, dev = _resolve(item, device)
        marks = [] if backend is not None else [pytest.mark.skip(reason=f"{label}: not registered")]
        for check in CHECKS:
            for dtype in ("float32", "float64") if check in BY_DTYPE else (None,):
                ident = f"{label}-{check.__name__}" + (f"-{dtype}" if dtype else "")
                params.append(pytest.param(backend, dev, check, dtype, id=ident, marks=marks))

    @pytest.mark.parametrize(("backend", "device", "check", "dtype"), params)
    def test_backend_conformance(backend, device, check, dtype):
        if check not in WITHOUT_RUNNING and isinstance(backend, type):
            try:
                found = backend.probe()
            except Exception:  # noqa: BLE001 - check_probe reports it; make_backend fails on it
                found = None
            if isinstance(found, Probe) and not found.usable:
                pytest.skip(f"{backend.name}: {found.reason}")
        if dtype is None:
            check(backend, device)
        elif dtype not in supported_dtypes(backend, device):
            pytest.skip(f"{label_of(backend, device)} has no {dtype}")
        else:
            check(backend, device, dtype=dtype)

    return test_backend_conformance
