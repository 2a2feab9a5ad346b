"""array-api-strict: the standard and nothing else, on its CPU or its second device.

It is slow and exists to prove that the model uses only the standard (which
is what makes it run on CuPy and the rest). `array_api_strict:device1` puts
everything on the library's second (fake) device.
"""

from __future__ import annotations

import re

import numpy as np

from mlp_backends.backend import Backend, Probe


def _device_names(xp) -> list[str]:
    # Device has no public name attribute; its repr is Device('NAME').
    return [re.sub(r"^.*\('(.*)'\)$", r"\1", repr(d)) for d in xp.__array_namespace_info__().devices()]


class StrictBackend(Backend):
    """array-api-strict on its CPU device or its second device (array_api_strict:device1)."""

    name = "array_api_strict"
    priority = -10  # never worth choosing for speed

    @classmethod
    def probe(cls) -> Probe:
        try:
            import array_api_strict as xp
        except ImportError as exc:
            return Probe(False, f'not installed ({exc}); pip install "mlp-backends[strict]"')
        x = xp.arange(4.0)
        if float(xp.sum(x * x)) != 14.0:
            return Probe(False, "array_api_strict computed 0+1+4+9 wrongly")
        return Probe(True, devices=tuple(_device_names(xp)), version=xp.__version__)

    def _setup(self, device):
        import array_api_strict as xp

        name = device or "CPU_DEVICE"
        if name not in _device_names(xp):
            raise ValueError(f"no device {name!r}; devices: {', '.join(_device_names(xp))}")
        return xp, xp.Device(name)

    def to_numpy(self, x):
        # NumPy refuses arrays that are not on the CPU device; move them first.
        return np.asarray(x.to_device(self.xp.Device("CPU_DEVICE")), copy=True)
