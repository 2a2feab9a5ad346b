"""Which GPU drivers this machine has, found without importing any GPU library.

Importing torch, JAX or CuPy to learn that there is no GPU costs seconds; a
driver that is not installed can be seen in milliseconds. A backend names the
drivers its GPU path needs (`Backend.gpu_drivers`); when none of them is here,
auto does not probe it at all. Each answer is found once per process.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import importlib.util
import os
import sys


def _loadable(*names: str) -> bool:
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def _nvidia() -> bool:
    # /proc/driver/nvidia on a Linux host; WSL has only the user-space library.
    if os.path.exists("/proc/driver/nvidia"):
        return True
    if sys.platform == "win32":
        return _loadable("nvcuda.dll")
    return sys.platform != "darwin" and _loadable("libcuda.so.1", "libcuda.so")


def _rocm() -> bool:
    # The kernel driver's compute interface; HIP libraries need it to see a device.
    return sys.platform.startswith("linux") and os.path.exists("/dev/kfd")


def _tpu() -> bool:
    # TPU VMs expose /dev/accel*; JAX reaches them through the libtpu package.
    return bool(glob.glob("/dev/accel*")) or importlib.util.find_spec("libtpu") is not None


def _metal() -> bool:
    return sys.platform == "darwin"


#: Each check answers "could this kind of accelerator be here?"; tests replace them.
CHECKS = {"nvidia": _nvidia, "rocm": _rocm, "tpu": _tpu, "metal": _metal}


@functools.cache
def present(kind: str) -> bool:
    """Whether a driver of `kind` ("nvidia", "rocm", "tpu", "metal") may be usable here.

    An unknown kind counts as present: not knowing must never hide a GPU.
    """
    check = CHECKS.get(kind)
    return True if check is None else bool(check())


def missing(kinds: tuple[str, ...]) -> bool:
    """True when none of the drivers in `kinds` is here (so no GPU could be found)."""
    return not any(present(kind) for kind in kinds)
