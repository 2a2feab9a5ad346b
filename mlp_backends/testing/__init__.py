"""The Backend contract as a conformance kit: run it before your users find out.

    from mlp_backends.testing import check_backend
    check_backend(MyBackend)            # raises AssertionError at the first broken promise

Every promise of `mlp_backends.backend` has one check here, a function
`check_NAME(backend, device=None)` that takes the plugin class (or an
instance) and raises `AssertionError` whose message names the promise, what
the plugin did instead, and how to fix it. `check_backend` runs them all, in
the order of `CHECKS`: cheap contract checks first, then numerical agreement
with the NumPy float64 reference (forward, loss and gradients; several steps
of every optimizer, plain and through the plugin's `compile`; a short `fit`),
in float32 and, where the backend supports it, float64.

In a pytest suite, one line gives one test per check:

    from mlp_backends.testing import backend_conformance_tests
    test_my_backend = backend_conformance_tests(MyBackend)

Importing this module imports neither pytest nor any array library.
"""

from __future__ import annotations

from .agreement import (
    check_compiled_steps_agree,
    check_fit_agrees,
    check_loss_and_gradients_agree,
    check_plain_steps_agree,
    tolerance,
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
    make_backend,
    supported_dtypes,
)
from .suite import CHECKS, backend_conformance_tests, check_backend

__all__ = [
    "CHECKS",
    "backend_conformance_tests",
    "check_asarray",
    "check_attributes",
    "check_backend",
    "check_compiled_steps_agree",
    "check_device_context",
    "check_fit_agrees",
    "check_import_is_light",
    "check_loss_and_gradients_agree",
    "check_memory_stats",
    "check_namespace",
    "check_out_of_memory",
    "check_owns",
    "check_plain_steps_agree",
    "check_probe",
    "check_stage_batches",
    "check_synchronize",
    "check_to_numpy",
    "make_backend",
    "supported_dtypes",
    "tolerance",
]
