"""What the GPU memory savers cost per step, on against off, in one run.

JAX's `compile` can donate the step's parameters and optimizer state to XLA
(`JaxBackend.donate`), PyTorch's can update them in place
(`TorchBackend.in_place`); both then drop bad batches on the device. By
default both are on for GPUs only. This times each backend's compiled step
with the switch off and on, on the same workload, taking turns epoch by
epoch after a warm-up epoch each, and prints the medians and their ratio.

    python benchmarks/memory_savers.py                     # jax and torch, mnist, sgd and adam
    python benchmarks/memory_savers.py --backends torch --workload small --rounds 11
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlp_backends import MLP, get_backend, list_backends, optim, train  # noqa: E402
from mlp_backends.bench.workloads import WORKLOADS, make_data  # noqa: E402

SWITCHES = {"jax": "donate", "torch": "in_place"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="jax,torch", help="comma-separated, of: jax, torch")
    p.add_argument("--workload", choices=sorted(WORKLOADS), default="mnist")
    p.add_argument("--optimizers", default="sgd,adam", help="comma-separated: sgd, momentum, adam")
    p.add_argument("--rounds", type=int, default=7, help="timed epochs per setting (default 7)")
    args = p.parse_args()
    usable = {i.name for i in list_backends() if i.usable}
    w = WORKLOADS[args.workload]
    X, y = make_data(w, "float32")
    steps = -(-w.n // w.batch)
    for name in args.backends.split(","):
        if name not in SWITCHES or name not in usable:
            print(f"{name}: skipped ({'not usable here' if name in SWITCHES else 'no memory saver'})")
            continue
        be, switch = get_backend(name), SWITCHES[name]
        Xd, Y = be.asarray(X, "float32"), train.one_hot_targets(be, y, w.sizes[-1], "float32")
        print(f"{name} on {be.device}, `{switch}`, workload {w.name} ({'-'.join(map(str, w.sizes))}, "
              f"batch {w.batch}), float32, median of {args.rounds} epochs")
        for opt_name in args.optimizers.split(","):
            opt = optim.make_optimizer(opt_name, w.learning_rate)
            compiled, times = {}, {}
            for on in (False, True):
                setattr(be, switch, on)
                compiled[on] = be.compile(train.make_step(be.xp, opt, w.activation, 0.0))
                times[on] = []
            setattr(be, switch, None)
            models = {on: MLP(w.sizes[0], w.sizes[1:-1], w.sizes[-1], w.activation, backend=be, dtype="float32",
                              seed=0) for on in compiled}
            for r in range(args.rounds + 1):  # round 0 warms up (JAX compiles): not counted
                for on, step in compiled.items():
                    h = train.run(models[on], Xd, Y, optimizer=opt, epochs=1, batch_size=w.batch, shuffle=True,
                                  seed=r, step=step)
                    if r:
                        times[on].append(h.time[-1])
            off, on = (statistics.median(times[s]) * 1e6 / steps for s in (False, True))
            print(f"  {opt_name:8s} off {off:8.1f} us/step   on {on:8.1f} us/step   on/off {on / off:.3f}")


if __name__ == "__main__":
    main()
