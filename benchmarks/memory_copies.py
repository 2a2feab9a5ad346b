"""How many copies of the parameters one training epoch holds at its peak (NumPy, tracemalloc).

    python benchmarks/memory_copies.py

Beyond the data, the parameters and the optimizer state that exist before
the epoch, it reports the extra peak of traced allocations during the epoch,
in units of one copy of the parameters, next to one batch's activations;
for the NumPy backend's compiled step (the default, updating in place) and
for the plain functional step, side by side.
"""

import sys
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlp_backends import MLP, get_backend, optim, train  # noqa: E402


def main() -> None:
    be = get_backend("numpy")
    rng = np.random.default_rng(0)
    n, sizes, batch = 6000, (784, 512, 10), 256
    X = be.asarray(rng.standard_normal((n, sizes[0])), "float32")
    Y = be.asarray(np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)], "float32")
    print(f"NumPy, layers {'-'.join(map(str, sizes))}, batch {batch}, float32")
    for name in ("sgd", "momentum", "adam"):
        for path in ("in place", "plain"):
            model = MLP(sizes[0], sizes[1], sizes[-1], "relu", backend=be, dtype="float32")
            opt = optim.make_optimizer(name, 0.01)
            # "in place": the backend's compiled step (its default); "plain": the pure functional step.
            step = train.make_step(be.xp, opt, model.activation, model.l2)
            step = be.compile(step) if path == "in place" else step
            train.run(model, X, Y, optimizer=opt, epochs=1, batch_size=batch, shuffle=True, seed=0,
                      step=step)  # the optimizer state exists
            params = sum(p.nbytes for p in model.params)
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            train.run(model, X, Y, optimizer=opt, epochs=1, batch_size=batch, shuffle=True, seed=1,
                      state=model.optimizer_state.moments, step=step)
            peak = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
            held = 1 + len(model.optimizer_state.moments)  # parameters and optimizer moments, before the epoch
            acts = batch * sum(sizes) * 4
            print(f"{name:9s} {path:8s} before: {held} copies; extra peak in the epoch: {peak / params:.1f} "
                  f"copies ({peak / 1e6:.1f} MB; one batch's activations: {acts / 1e6:.1f} MB); "
                  f"peak in all: {held + peak / params:.1f} copies")


if __name__ == "__main__":
    main()
