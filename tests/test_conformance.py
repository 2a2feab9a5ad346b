"""Every registered backend keeps the whole Backend contract (mlp_backends.testing).

This is the same line a plugin author adds to their own suite; it replaces
the agreement tests that used to live here as a second copy. An unusable
backend is skipped with the registry's reason, except for the checks that
hold without running it (its probe and its import).
"""

from __future__ import annotations

from conftest import is_own

from mlp_backends import list_backends
from mlp_backends.testing import backend_conformance_tests

# The strict library's second device proves that nothing falls back to the default
# device; its "no_float64" device, that float64 is skipped where a device lacks it.
EXTRA = ["array_api_strict:device1", "array_api_strict:no_float64"]

# Only this distribution's own; the example plugin runs its own one-line suite (test_example_plugin.py).
test_built_in_backends = backend_conformance_tests(
    *[i.name for i in list_backends() if is_own(i)], *EXTRA)
