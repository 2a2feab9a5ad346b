"""What the harness times: each entry runs one epoch when asked and returns its seconds.

The library on a backend (through train.run and the compile hook), that
backend's GEMM-only floor, and the reference competitors.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import InputError
from .workloads import Workload


class Entry:
    """A row of the table. `epoch()` runs one epoch and returns its seconds."""

    name: str
    kind: str  # "library", "reference" or "floor"
    floor_of: str  # which floor entry its ratio is taken against
    backend = None

    def epoch(self) -> float:
        """Run one epoch and return its seconds, the device synchronized before the clock stops."""
        raise NotImplementedError

    def device_memory(self) -> dict | None:
        """The backend's device memory figures after the rounds, or None where there are none."""
        return self.backend.memory_stats() if self.backend is not None else None


class LibraryEntry(Entry):
    """mlp_backends on one backend, through train.run and the backend's compile hook."""

    kind = "library"

    def __init__(self, backend, w: Workload, X, y, dtype: str, plain: bool, threads: int | None = None):
        from .. import optim, train
        from ..model import MLP

        self.backend, self.w = backend, w
        self.name = backend.name + (" (plain)" if plain else "")
        self.floor_of = f"{backend.name} GEMM floor"
        self.model = MLP(w.sizes[0], w.sizes[1:-1], w.sizes[-1], w.activation,
                         backend=backend, dtype=dtype, seed=0)
        self.X = backend.asarray(X, dtype)
        self.Y = train.one_hot_targets(backend, y, w.sizes[-1], dtype)
        self.optimizer = optim.SGD(w.learning_rate)
        step = train.make_step(backend.xp, self.optimizer, w.activation, 0.0)
        self.step = step if plain else backend.compile(step)
        self.state, self.t, self.count = None, 0, 0
        self.threads = threads  # None: train.run chooses, as fit does
        self.last_loss = float("nan")

    def epoch(self) -> float:
        from .. import train

        self.count += 1
        self.backend.synchronize()  # the clock starts on an idle device (train.run reads it)
        history = train.run(self.model, self.X, self.Y, optimizer=self.optimizer, epochs=1,
                            batch_size=self.w.batch, shuffle=True, seed=self.count,
                            state=self.state, start_step=self.t, step=self.step, threads=self.threads)
        self.state, self.t = self.model.optimizer_state.moments, self.model.optimizer_state.step
        self.last_loss = history.loss[-1] if history.loss else float("nan")
        return history.time[-1]


class PlacedEntry(Entry):
    """mlp_backends on a backend that trains elsewhere (`backend.trainer()`, e.g. a Dask
    cluster): the public `fit`, one epoch per call, its own epoch clock. Its workers
    compute with NumPy, so its ratio is taken against NumPy's floor.

    Dask trains mini-batches as local SGD (every row block runs its own steps, the
    driver averages once per epoch): the same data and batch, not the same algorithm.
    The data go to the cluster once, here, not in every timed epoch.
    """

    kind = "library"
    floor_of = "numpy GEMM floor"

    def __init__(self, backend, w: Workload, X, y, dtype: str):
        from ..model import MLP

        self.backend, self.w = backend, w
        self.model = MLP(w.sizes[0], w.sizes[1:-1], w.sizes[-1], w.activation,
                         backend=backend, dtype=dtype, seed=0)
        trainer = backend.trainer()
        # A trainer that can keep the data where it trains gets them once (Dask: `hold`).
        self.X, self.y = trainer.hold(X, y) if hasattr(trainer, "hold") else (X, y)
        where = trainer.describe() if hasattr(trainer, "describe") else backend.spec
        self.name = f"{backend.name} ({where})"
        self.count = 0
        self.last_loss = float("nan")

    def epoch(self) -> float:
        self.count += 1
        history = self.model.fit(self.X, self.y, epochs=1, batch_size=self.w.batch, optimizer="sgd",
                                 learning_rate=self.w.learning_rate, seed=self.count)
        self.last_loss = history.loss[-1]
        return history.time[-1]

    def device_memory(self) -> dict | None:
        return None


class FloorEntry(Entry):
    """The GEMM-only floor: one epoch's matrix products on one backend, nothing else."""

    kind = "floor"

    def __init__(self, backend, w: Workload, dtype: str):
        self.backend, self.w = backend, w
        self.name = self.floor_of = f"{backend.name} GEMM floor"
        rng = np.random.default_rng(1)
        b = backend

        def arr(*shape):
            return b.asarray(rng.standard_normal(shape), dtype)

        pairs = list(zip(w.sizes[:-1], w.sizes[1:]))
        self.Ws = [arr(i, o) for i, o in pairs]
        batches = [w.batch] * (w.n // w.batch) + ([w.n % w.batch] if w.n % w.batch else [])
        shapes = sorted(set(batches))
        self.data = {m: ([arr(m, i) for i, _ in pairs], [arr(m, o) for _, o in pairs]) for m in shapes}
        self.batches = batches

        def products(Ws, hs, ds):
            out = []
            for i, (W, h, d) in enumerate(zip(Ws, hs, ds)):
                out.append(h @ W)  # forward
                out.append(h.T @ d)  # weight gradient
                if i > 0:
                    out.append(d @ W.T)  # input gradient (the first layer's is never needed)
            return out

        self.products = b.compile(products)

    def epoch(self) -> float:
        xp = self.backend.xp
        self.backend.synchronize()
        start = time.perf_counter()
        out = None
        for m in self.batches:
            hs, ds = self.data[m]
            out = self.products(self.Ws, hs, ds)
        # Reading one number back waits for all queued work (JAX dispatches asynchronously).
        self.backend.to_numpy(xp.sum(out[-1]))
        self.backend.synchronize()
        return time.perf_counter() - start


class SklearnEntry(Entry):
    """scikit-learn's MLPClassifier: solver sgd, no momentum, same net, batch, rate and dtype."""

    kind, name, floor_of = "reference", "sklearn MLPClassifier", "numpy GEMM floor"

    def __init__(self, w: Workload, X, y):
        from sklearn.neural_network import MLPClassifier

        act = {"sigmoid": "logistic", "relu": "relu", "tanh": "tanh"}[w.activation]
        self.clf = MLPClassifier(hidden_layer_sizes=w.sizes[1:-1], activation=act, solver="sgd",
                                 batch_size=w.batch, learning_rate_init=w.learning_rate, momentum=0.0,
                                 alpha=0.0, shuffle=True, random_state=0)
        self.X, self.y, self.classes = X, y, np.arange(w.sizes[-1])

    def epoch(self) -> float:
        start = time.perf_counter()
        self.clf.partial_fit(self.X, self.y, classes=self.classes)  # one pass over the data
        return time.perf_counter() - start


class TorchEagerEntry(Entry):
    """A plain PyTorch loop: nn.Linear layers, CrossEntropyLoss, optim.SGD, loss kept on the device."""

    kind, name = "reference", "torch eager loop"

    def __init__(self, backend, w: Workload, X, y, dtype: str):
        import torch

        self.backend, self.w, self.torch = backend, w, torch
        self.floor_of = f"{backend.name} GEMM floor"
        dev, dt = backend.device, getattr(torch, dtype)
        torch.manual_seed(0)
        act = {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[w.activation]
        layers = []
        for i, (a, b) in enumerate(zip(w.sizes[:-1], w.sizes[1:])):
            layers.append(torch.nn.Linear(a, b))
            if i < len(w.sizes) - 2:
                layers.append(act())
        self.net = torch.nn.Sequential(*layers).to(device=dev, dtype=dt)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=w.learning_rate)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.X = torch.as_tensor(X, device=dev, dtype=dt)
        self.y = torch.as_tensor(y, device=dev)
        self.rng = np.random.default_rng(0)

    def epoch(self) -> float:
        torch, n, batch = self.torch, self.w.n, self.w.batch
        self.backend.synchronize()
        start = time.perf_counter()
        order = torch.as_tensor(self.rng.permutation(n), device=self.X.device)
        total = torch.zeros((), device=self.X.device)
        for lo in range(0, n, batch):
            idx = order[lo:lo + batch]
            xb, yb = self.X[idx], self.y[idx]
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.net(xb), yb)
            loss.backward()
            self.opt.step()
            total += loss.detach() * xb.shape[0]
        float(total)  # one read per epoch, like the library
        return time.perf_counter() - start


class HandwrittenEntry(Entry):
    """The article's NumPy code, on mini-batches: np.dot forward, hand-derived backward,
    in-place `-=` updates, and its loss line (guarded against log(0)), per batch. The
    yardstick for overhead."""

    kind, name, floor_of = "reference", "numpy hand-written", "numpy GEMM floor"

    def __init__(self, w: Workload, X, y, dtype: str):
        if w.activation not in ("sigmoid", "relu"):
            raise InputError("the hand-written reference knows sigmoid and relu only")
        rng = np.random.default_rng(0)
        self.w, self.X = w, X
        self.Y = np.eye(w.sizes[-1], dtype=dtype)[y]
        self.W = [(rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(dtype)
                  for a, b in zip(w.sizes[:-1], w.sizes[1:])]
        self.b = [np.zeros((1, b), dtype=dtype) for b in w.sizes[1:]]
        self.rng = rng

    def epoch(self) -> float:
        w, X, Y, W, b = self.w, self.X, self.Y, self.W, self.b
        sigmoid = w.activation == "sigmoid"
        start = time.perf_counter()
        order = self.rng.permutation(w.n)
        total = 0.0
        for lo in range(0, w.n, w.batch):
            idx = order[lo:lo + w.batch]
            Xb, Yb = X[idx], Y[idx]
            hs = [Xb]
            for i in range(len(W) - 1):
                z = np.dot(hs[-1], W[i]) + b[i]
                hs.append(1 / (1 + np.exp(-z)) if sigmoid else np.maximum(z, 0))
            z = np.dot(hs[-1], W[-1]) + b[-1]
            e = np.exp(z - np.max(z, axis=1, keepdims=True))
            out = e / np.sum(e, axis=1, keepdims=True)
            total += -np.sum(Yb * np.log(out + 1e-12))
            err = out - Yb
            lr = w.learning_rate / Xb.shape[0]
            for i in range(len(W) - 1, -1, -1):
                h = hs[i]
                back = np.dot(err, W[i].T) if i > 0 else None
                W[i] -= lr * np.dot(h.T, err)
                b[i] -= lr * np.sum(err, axis=0, keepdims=True)
                if i > 0:
                    err = back * h * (1 - h) if sigmoid else back * (h > 0)
        return time.perf_counter() - start
