"""The whole mlp_backends contract, one test per check: the one line a plugin's suite needs."""

from mlp_backends_mlx import MLXBackend

from mlp_backends.testing import backend_conformance_tests

test_mlx_backend = backend_conformance_tests(MLXBackend)
