"""Host batches to the GPU while the previous batch computes (CuPy's `Backend.stage_batches`).

Training from a file on disk (mlp_backends/outofcore.py) reads each mini-batch on
the host. Copied the plain way, the GPU waits for every copy: pageable host memory
is staged by the driver, and the copy runs on the compute stream. Here each batch
goes into page-locked (pinned) host memory, from which the copy engine reads on
its own stream, asynchronously; the compute stream waits only for that batch's
copy (an event), and the copy of batch k runs while the kernels of batch k-1,
already queued, still run.

Two slots, used in turn, each a pinned host buffer and a device buffer of one
batch. Before a slot is filled again (two batches later) the host waits for its
last copy to finish (the pinned memory is read by it), and the copy stream waits
for the compute that used its device buffer. A batch handed out is therefore a
view of a slot: valid until two more batches have been asked for, which the
training loop respects (it is done with a batch when it asks for the next).

`cp` is the CuPy module, passed in, so that tests drive the same code with a
stand-in on the CPU (tests/test_cupy_staging.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np


class _Slot:
    def __init__(self):
        self.host = self.device = None
        self.copied = None  # event: the last copy out of `host` has finished
        self.used = None  # event: the compute that read `device` has finished

    def fill(self, cp, copier, Xb: np.ndarray, dtype):
        """Start copying Xb to this slot's device buffer on `copier`; returns the device view."""
        n = Xb.shape[0]
        if self.copied is not None:
            self.copied.synchronize()  # the pinned buffer may still be read by its last copy
        if self.host is None or self.host.shape[0] < n or self.host.shape[1:] != Xb.shape[1:]:
            count = n * int(np.prod(Xb.shape[1:], dtype=np.int64))
            memory = cp.cuda.alloc_pinned_memory(count * dtype.itemsize)
            self.host = np.frombuffer(memory, dtype, count).reshape(Xb.shape)
            self.device = cp.empty(Xb.shape, dtype)  # a new buffer: no kernel reads it yet
            self.copied = self.used = None
        host, device = self.host[:n], self.device[:n]
        np.copyto(host, Xb, casting="same_kind")
        if self.used is not None:
            copier.wait_event(self.used)  # the device buffer is still read by its last batch's kernels
        device.set(host, stream=copier)
        self.copied = copier.record()
        return device


def staged(cp, batches: Iterable, dtype: str) -> Iterator:
    """(device Xb, tag) for each host (Xb, tag) of `batches`, copied as described above."""
    dtype = np.dtype(dtype)
    copier = cp.cuda.Stream(non_blocking=True)
    slots = (_Slot(), _Slot())
    for k, (Xb, tag) in enumerate(batches):
        slot = slots[k % 2]
        device = slot.fill(cp, copier, np.asarray(Xb), dtype)
        compute = cp.cuda.get_current_stream()
        compute.wait_event(slot.copied)
        yield device, tag
        slot.used = cp.cuda.get_current_stream().record()
