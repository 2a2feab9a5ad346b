"""Device memory across epochs and repeated `fit` calls, per GPU backend: it must stay flat.

Trains one model on a GPU backend with several `fit` calls of a few epochs
each (the public API, the default compiled step), reads the backend's
`memory_stats()` after every epoch (a callback; the device is synchronized
first) and prints one JSON object per backend: the figures, and the growth
from the end of the first epoch to the last, of the allocator's bytes in use
and of the device's own used bytes (which also counts cuBLAS workspaces,
other pools and the CUDA context).

    python benchmarks/gpu_memory.py                          # every usable GPU backend, mnist
    python benchmarks/gpu_memory.py --backends cupy --fits 4 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlp_backends import MLP, get_backend, list_backends  # noqa: E402
from mlp_backends.bench.workloads import WORKLOADS, make_data  # noqa: E402

MB = 2**20


class Record:
    """A callback that reads the device's memory after each epoch."""

    def __init__(self, backend):
        self.backend, self.rows = backend, []

    def on_epoch_end(self, model, logs):
        self.backend.synchronize()
        self.rows.append(self.backend.memory_stats() or {})


def growth(rows, key):
    values = [r[key] for r in rows if key in r]
    return (values[-1] - values[0]) / MB if len(values) > 1 else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default=None, help="comma-separated (default: every usable GPU backend)")
    p.add_argument("--workload", choices=sorted(WORKLOADS), default="mnist")
    p.add_argument("--fits", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2, help="epochs per fit")
    args = p.parse_args()
    names = (args.backends.split(",") if args.backends
             else [i.name for i in list_backends() if i.usable and i.is_gpu and not i.distributed])
    w = WORKLOADS[args.workload]
    X, y = make_data(w, "float32")
    for name in names:
        be = get_backend(name)
        model = MLP(w.sizes[0], w.sizes[1:-1], w.sizes[-1], w.activation, backend=be, seed=0)
        record = Record(be)
        for _ in range(args.fits):
            model.fit(X, y, epochs=args.epochs, batch_size=w.batch, learning_rate=w.learning_rate,
                      optimizer="adam", callbacks=[record])
        print(json.dumps({
            "backend": be.spec, "workload": w.name, "fits": args.fits, "epochs_per_fit": args.epochs,
            "in_use_growth_mb": growth(record.rows, "in_use_bytes"),
            "device_used_growth_mb": growth(record.rows, "device_used_bytes"),
            "in_use_mb": [round(r.get("in_use_bytes", 0) / MB, 3) for r in record.rows],
            "device_used_mb": [round(r.get("device_used_bytes", 0) / MB, 3) for r in record.rows],
        }), flush=True)


if __name__ == "__main__":
    main()
