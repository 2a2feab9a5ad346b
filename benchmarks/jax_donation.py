"""What JAX's buffer donation costs per step, donation on against off, in one run.

`JaxBackend.donate` (None: on GPUs only) makes `compile` give the step's
parameters and optimizer state to XLA and drop bad batches on the device
(train.SkipNonFinite). This times both compiled steps on the same workload,
taking turns epoch by epoch after a warm-up epoch each, and prints the
medians and their ratio; that ratio is why donation is off on the CPU.

    python benchmarks/jax_donation.py                      # mnist, sgd and adam, 7 rounds
    python benchmarks/jax_donation.py --workload small --optimizers adam --rounds 11
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlp_backends import MLP, get_backend, optim, train  # noqa: E402
from mlp_backends.bench.workloads import WORKLOADS, make_data  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workload", choices=sorted(WORKLOADS), default="mnist")
    p.add_argument("--optimizers", default="sgd,adam", help="comma-separated: sgd, momentum, adam")
    p.add_argument("--rounds", type=int, default=7, help="timed epochs per setting (default 7)")
    args = p.parse_args()
    w = WORKLOADS[args.workload]
    be = get_backend("jax")
    X, y = make_data(w, "float32")
    Xd, Y = be.asarray(X, "float32"), train.one_hot_targets(be, y, w.sizes[-1], "float32")
    steps = -(-w.n // w.batch)
    print(f"jax on {be.device}, workload {w.name} ({'-'.join(map(str, w.sizes))}, batch {w.batch}), "
          f"float32, median of {args.rounds} epochs")
    for name in args.optimizers.split(","):
        opt = optim.make_optimizer(name, w.learning_rate)
        compiled, times = {}, {}
        for donate in (False, True):
            be.donate = donate
            compiled[donate] = be.compile(train.make_step(be.xp, opt, w.activation, 0.0))
            times[donate] = []
        be.donate = None
        models = {d: MLP(w.sizes[0], w.sizes[1:-1], w.sizes[-1], w.activation, backend=be, dtype="float32", seed=0)
                  for d in compiled}
        for r in range(args.rounds + 1):  # round 0 compiles: not counted
            for donate, step in compiled.items():
                h = train.run(models[donate], Xd, Y, optimizer=opt, epochs=1, batch_size=w.batch, shuffle=True,
                              seed=r, step=step)
                if r:
                    times[donate].append(h.time[-1])
        off, on = (statistics.median(times[d]) * 1e6 / steps for d in (False, True))
        print(f"{name:8s} donation off {off:8.1f} us/step   on {on:8.1f} us/step   on/off {on / off:.3f}")


if __name__ == "__main__":
    main()
