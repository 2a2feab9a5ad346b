"""What a NumPy step's loss and accuracy cost on the article's network, and what integer labels save.

    python benchmarks/step_metrics.py [--repeats 40]

Times, in CPU seconds of the training thread (time.thread_time, one BLAS
thread; so a machine shared with other work does not blur the comparison),
one epoch of `small` (64-32-10 sigmoid, batch 32, SGD) per round:

- the article's hand-written step (gathers, forward, backward, update; no loss);
- the library's NumPy step as `fit` runs it (train.run for one epoch, its
  setup included: the tallied step of backends/numpy_tally.py, which keeps
  logits and targets and computes loss and hits once per block of batches);
- the tallied step in a bare loop (the epoch loop without train.run's bookkeeping);
- the compiled step in a bare loop (loss from the log-softmax and hits from two
  argmaxes over logits and one-hot rows, every step);
- the same step counting hits against integer labels gathered per batch
  (the labels kept on the device; one argmax fewer, one gather more);
- the same step with no loss and no hits at all (the floor for metrics).

Reported: the best round (microseconds per step) and the ratio to the article.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlp_backends import MLP, get_backend, nn, optim, train  # noqa: E402
from mlp_backends.bench import WORKLOADS, make_data  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from article_step import article_epochs  # noqa: E402


def variant(step, metrics: str):
    """The compiled NumPy step with its metrics computed another way (same update)."""
    xp, kern, update = step.config["xp"], step.config["kern"], step.config["update"]

    def body(params, state, Xb, Yb, t, yb=None):
        if metrics == "none":
            logits, inputs = nn.forward(xp, params, Xb, "sigmoid", kern)
            delta = kern.softmax_delta(nn.log_softmax(xp, logits), Yb, Xb.shape[0])
            grads = nn.backward(xp, params, inputs, delta, "sigmoid", kern)
            params, state, loss = update(params, grads, state, t, 0.0)
            return params, state, 0.0, 0.0
        loss, grads, logits = nn.loss_and_grads(xp, params, Xb, Yb, "sigmoid", 0.0, kern=kern)
        params, state, loss = update(params, grads, state, t, loss)
        hits = xp.astype(xp.count_nonzero(xp.argmax(logits, axis=1) == yb), Xb.dtype)
        return params, state, loss, hits

    return body


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=40)
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    limits = threadpool_limits(1)  # noqa: F841 - all work on the timed thread
    w = WORKLOADS["small"]
    X, y = make_data(w, "float32")
    be = get_backend("numpy")
    xp = be.xp
    Y = train.one_hot_targets(be, y, w.sizes[-1], "float32")
    labels = be.asarray(y)
    opt = optim.SGD(w.learning_rate)
    step = be.compile(train.make_step(xp, opt, w.activation, 0.0))
    model = MLP(*w.sizes, w.activation, backend=be, seed=0)
    state = opt.init(xp, model.params)
    rng = np.random.default_rng(0)
    steps = -(-w.n // w.batch)

    def loop(fn, with_labels):
        def epoch():
            nonlocal state
            order = be.asarray(rng.permutation(w.n))
            loss_sum = correct = xp.asarray(0.0, dtype=xp.float32)
            with step.watch():
                for t, lo in enumerate(range(0, w.n, w.batch), start=1):
                    idx = order[lo:lo + w.batch]
                    Xb, Yb = xp.take(X, idx, axis=0), xp.take(Y, idx, axis=0)
                    yb = xp.take(labels, idx, axis=0) if with_labels else None
                    model.params, state, loss, hits = fn(model.params, state, Xb, Yb, t, yb)
                    loss_sum = loss_sum + loss * Xb.shape[0]
                    correct = correct + hits
        return epoch

    tally = step.tally(w.batch)

    def tallied():
        nonlocal state
        order = be.asarray(rng.permutation(w.n))
        tally.reset()
        with step.watch():
            for t, lo in enumerate(range(0, w.n, w.batch), start=1):
                Xb, Yb = tally.gather(X, Y, order[lo:lo + w.batch])
                model.params, state, _, _ = tally.step(model.params, state, Xb, Yb, t)
            tally.sums()

    entries = {
        "article's step (no loss)": lambda: article_epochs(X, np.eye(10, dtype=np.float32)[y], 1, w.batch,
                                                           w.learning_rate, rng),
        "library step as fit runs it": lambda: train.run(model, X, Y, optimizer=opt, epochs=1, batch_size=w.batch,
                                                          shuffle=True, seed=0, step=step, threads=1),
        "tallied step in a bare loop": tallied,
        "per-step loss and hits in a bare loop": loop(lambda p, s, Xb, Yb, t, yb: step(p, s, Xb, Yb, t), False),
        "hits against integer labels": loop(variant(step, "labels"), True),
        "no loss, no hits": loop(variant(step, "none"), False),
    }
    best = {k: float("inf") for k in entries}
    for _ in range(args.repeats):
        for k, fn in entries.items():
            start = time.thread_time()
            fn()
            best[k] = min(best[k], (time.thread_time() - start) / steps * 1e6)
    base = best["article's step (no loss)"]
    print(f"small, one BLAS thread, CPU time of the training thread, best of {args.repeats} epochs\n")
    print("| entry | us/step | x article |\n|---|---:|---:|")
    for k, v in best.items():
        print(f"| {k} | {v:.1f} | {v / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
