"""NumPy on the CPU: the reference backend, always usable."""

from __future__ import annotations

from mlp_backends.backend import Backend, Probe


class NumPyBackend(Backend):
    name = "numpy"
    priority = 0

    @classmethod
    def probe(cls) -> Probe:
        import numpy as np

        x = np.arange(4.0)
        if float(x @ x) != 14.0:
            return Probe(False, "numpy computed 0+1+4+9 wrongly", version=np.__version__)
        return Probe(True, devices=("cpu",), version=np.__version__)

    def _setup(self, device):
        import array_api_compat.numpy as xp

        if device not in (None, "cpu"):
            raise ValueError(f"numpy runs on 'cpu' only, not {device!r}")
        return xp, "cpu"
