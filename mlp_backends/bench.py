"""The benchmark harness behind `mlp-backends bench` and `benchmarks/bench.py`.

One workload, trained on every chosen backend and on the reference
competitors in one run, round-robin, so that a machine whose load drifts
(shared CPUs, a GPU's clocks) slows every entry alike and the ratios stay
honest. Each entry: one warm-up epoch (not timed: JIT, caches, kernel
loading), then `repeats` rounds of `epochs` epochs; an epoch's clock is read
after the device has finished (the library reads its loss back once per
epoch; the others synchronize). Reported: the median over rounds.

The GEMM-only floor of a backend is the same matrix products as one epoch of
training (forward, and backward's weight and input gradients), on arrays of
the same shapes, timed alone on that backend in the same rounds.

It lives inside the package (not only under benchmarks/) so the installed
`mlp-backends bench` can import it; `benchmarks/bench.py` is a thin entry.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class Workload:
    name: str
    n: int
    sizes: tuple[int, ...]
    batch: int
    activation: str
    learning_rate: float
    note: str

    @property
    def flops_per_epoch(self) -> float:
        """6 x N x sum(fan_in x fan_out): forward, and backward's two products."""
        return 6.0 * self.n * sum(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))


WORKLOADS = {
    w.name: w
    for w in [
        Workload("tiny", 512, (16, 8, 4), 64, "relu", 0.1, "a smoke test, not a timing"),
        Workload("small", 1797, (64, 32, 10), 32, "sigmoid", 0.1, "the digits shape and the article's net"),
        Workload("mnist", 60000, (784, 512, 10), 256, "relu", 0.05, "synthetic, MNIST-shaped"),
        Workload("wide", 16384, (1024, 4096, 4096, 10), 1024, "relu", 0.01, "for GPUs"),
    ]
}
REFERENCES = ("sklearn", "torch-eager", "numpy-handwritten")


def make_data(w: Workload, dtype: str, seed: int = 0):
    """Gaussian features; labels from a random linear teacher, so the task is learnable."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((w.n, w.sizes[0]), dtype=np.float32).astype(dtype, copy=False)
    teacher = rng.standard_normal((w.sizes[0], w.sizes[-1]), dtype=np.float32)
    y = np.argmax(X.astype(np.float32, copy=False) @ teacher, axis=1)
    return X, y


# -- memory ---------------------------------------------------------------
def _status_kb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def rss_mb() -> float:
    kb = _status_kb("VmRSS")
    return (kb if kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def reset_peak() -> bool:
    """Reset the process's peak RSS (Linux: clear_refs 5), so each entry gets its own."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    kb = _status_kb("VmHWM")
    return (kb if kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


# -- entries: something that trains (or multiplies) one epoch at a time ----
class Entry:
    """A row of the table. `epoch()` runs one epoch and returns its seconds."""

    name: str
    kind: str  # "library", "reference" or "floor"
    floor_of: str  # which floor entry its ratio is taken against
    backend = None

    def epoch(self) -> float:
        raise NotImplementedError

    def device_memory(self) -> dict | None:
        return self.backend.memory_stats() if self.backend is not None else None


class LibraryEntry(Entry):
    """mlp_backends on one backend, through train.run and the backend's compile hook."""

    kind = "library"

    def __init__(self, backend, w: Workload, X, y, dtype: str, plain: bool):
        from . import optim, train
        from .model import MLP

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
        self.last_loss = float("nan")

    def epoch(self) -> float:
        from . import train

        self.count += 1
        history = train.run(self.model, self.X, self.Y, optimizer=self.optimizer, epochs=1,
                            batch_size=self.w.batch, shuffle=True, seed=self.count,
                            state=self.state, start_step=self.t, step=self.step)
        self.state, self.t = self.model._opt_state, self.model._step
        self.last_loss = history.loss[-1] if history.loss else float("nan")
        return history.time[-1]


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
    in-place `-=` updates, and its loss line, per batch. The yardstick for overhead."""

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


# -- the run ----------------------------------------------------------------
def _progress(total: int):
    try:
        from tqdm import tqdm

        return tqdm(total=total, unit="epoch", file=sys.stderr, dynamic_ncols=True, leave=False)
    except ImportError:  # a line per update, without the nicety
        class Plain:
            n = 0

            def set_description_str(self, text):
                self.text = text

            def update(self, k=1):
                self.n += k
                print(f"\r[{self.n}/{total}] {self.text}", end="", file=sys.stderr, flush=True)

            def close(self):
                print(file=sys.stderr)

        return Plain()


def build_entries(args, w: Workload, X, y) -> list[Entry]:
    from .registry import get_backend, list_backends

    refs = [r.strip() for r in (args.references or "").split(",") if r.strip() and r.strip() != "none"]
    unknown = set(refs) - set(REFERENCES)
    if unknown:
        raise InputError(f"unknown reference {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(REFERENCES)}, or none")
    infos = {i.name: i for i in list_backends()}
    if args.backends:
        names = [s.strip() for s in args.backends.split(",") if s.strip()]
    else:  # every usable backend, except the one that exists only to prove conformance
        names = [i.name for i in infos.values() if i.usable and i.name != "array_api_strict"]
    backends = [get_backend(spec) for spec in names]  # a bad name fails here, with the usable ones
    entries: list[Entry] = []
    floors: dict[str, Entry] = {}

    def floor(backend):
        if backend.name not in floors:
            floors[backend.name] = FloorEntry(backend, w, args.dtype)
        return floors[backend.name]

    for be in backends:
        floor(be)
        entries.append(LibraryEntry(be, w, X, y, args.dtype, plain=False))
        if args.plain:
            entries.append(LibraryEntry(be, w, X, y, args.dtype, plain=True))
    for ref in refs:
        usable = lambda name: name in infos and infos[name].usable  # noqa: E731
        if ref == "sklearn":
            try:
                entries.append(SklearnEntry(w, X, y))
            except ImportError:
                print("bench: scikit-learn is not installed; skipping its reference", file=sys.stderr)
                continue
        elif ref == "torch-eager":
            if not usable("torch"):
                print("bench: torch is not usable here; skipping the torch eager loop", file=sys.stderr)
                continue
            tb = get_backend("torch")
            entries.append(TorchEagerEntry(tb, w, X, y, args.dtype))
            floor(tb)
        else:
            entries.append(HandwrittenEntry(w, X, y, args.dtype))
        if entries[-1].floor_of == "numpy GEMM floor":
            floor(get_backend("numpy"))
    return entries + list(floors.values())


def measure(entries: list[Entry], repeats: int, epochs: int) -> dict[str, dict]:
    """Warm up each entry, then `repeats` round-robin rounds of `epochs` epochs each."""
    bar = _progress(len(entries) * (1 + repeats * epochs))
    record = {e.name: {"rounds": [], "rss_mb": [], "peak_mb": 0.0, "device": []} for e in entries}
    try:
        for r in range(-1, repeats):
            for e in entries:
                rec = record[e.name]
                reset_peak()
                bar.set_description_str(f"{e.name}: {'warm-up' if r < 0 else f'round {r + 1}/{repeats}'}")
                times = []
                for _ in range(1 if r < 0 else epochs):
                    times.append(e.epoch())
                    bar.update(1)
                    if r >= 0:
                        rec["rss_mb"].append(round(rss_mb(), 1))
                        dev = e.device_memory()
                        if dev:
                            rec["device"].append(dev)
                if r >= 0:
                    rec["rounds"].append(sum(times) / len(times))
                rec["peak_mb"] = max(rec["peak_mb"], peak_mb())
    finally:
        bar.close()
    return record


def summarize(w: Workload, entries: list[Entry], record: dict, dtype: str) -> list[dict]:
    steps = -(-w.n // w.batch)
    by_name = {e.name: e for e in entries}
    epoch_s = {name: statistics.median(rec["rounds"]) for name, rec in record.items()}
    numpy_s = epoch_s.get("numpy")
    rows = []
    for e in entries:
        t = epoch_s[e.name]
        floor = epoch_s.get(e.floor_of) if e.kind != "floor" else t
        rss = record[e.name]["rss_mb"]
        dev = record[e.name]["device"]
        row = {
            "name": e.name, "kind": e.kind, "floor": e.floor_of,
            "epoch_s": t, "step_us": t / steps * 1e6, "samples_per_s": w.n / t,
            "gflops": w.flops_per_epoch / t / 1e9,
            "x_floor": t / floor if floor else None,
            "x_numpy": t / numpy_s if numpy_s else None,
            "rounds_s": record[e.name]["rounds"],
            "peak_host_mb": record[e.name]["peak_mb"],
            "rss_mb_per_epoch": rss,
            "host_growth_mb": (rss[-1] - rss[0]) if len(rss) > 1 else 0.0,
        }
        if dev:
            row["device_peak_mb"] = max(d.get("peak_bytes", d.get("in_use_bytes", 0)) for d in dev) / 2**20
            in_use = [d.get("in_use_bytes", 0) / 2**20 for d in dev]
            row["device_in_use_mb_per_epoch"] = in_use
            row["device_growth_mb"] = in_use[-1] - in_use[0] if len(in_use) > 1 else 0.0
        if isinstance(by_name[e.name], LibraryEntry):
            row["final_loss"] = by_name[e.name].last_loss
        rows.append(row)
    return rows


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def markdown(w: Workload, rows: list[dict], meta: dict) -> str:
    head = (f"workload `{w.name}` ({w.note}): {w.n} samples, layers {'-'.join(map(str, w.sizes))}, "
            f"batch {w.batch}, {w.activation}, SGD, {meta['dtype']}; median of {meta['repeats']} rounds "
            f"of {meta['epochs']} epoch(s); {w.flops_per_epoch / 1e9:.3g} GFLOP per epoch")
    lines = [head, "",
             "| entry | epoch s | step us | samples/s | GFLOP/s | x GEMM floor | x numpy | peak host MB | host growth MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['epoch_s']:.4g} | {r['step_us']:.4g} | {r['samples_per_s']:.4g} | "
                     f"{r['gflops']:.4g} | {_fmt(r['x_floor'], '.3f')} | {_fmt(r['x_numpy'], '.3f')} | "
                     f"{r['peak_host_mb']:.0f} | {r['host_growth_mb']:+.1f} |")
    dev = [r for r in rows if "device_peak_mb" in r]
    if dev:
        lines += ["", "| entry | device peak MB | device growth MB |", "|---|---:|---:|"]
        lines += [f"| {r['name']} | {r['device_peak_mb']:.0f} | {r['device_growth_mb']:+.1f} |" for r in dev]
    return "\n".join(lines)


def plot(w: Workload, rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r["kind"] != "floor"]
    floors = {r["name"]: r["epoch_s"] for r in rows if r["kind"] == "floor"}
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 0.5 * len(shown) + 2.2))
    names = [r["name"] for r in shown][::-1]
    times = [r["epoch_s"] for r in shown][::-1]
    colors = ["tab:blue" if r["kind"] == "library" else "tab:gray" for r in shown][::-1]
    ax.barh(names, times, color=colors)
    for i, r in enumerate(shown[::-1]):
        f = floors.get(r["floor"])
        if f:
            ax.plot([f, f], [i - 0.4, i + 0.4], color="black", lw=2)
        ax.annotate(f" {r['epoch_s']:.3g} s", (r["epoch_s"], i), va="center", fontsize=8)
    floor_ticks = [f for f in floors.values()]
    if max(times) / min(times + floor_ticks) > 30:  # a linear axis would hide the fast entries
        ax.set_xscale("log")
        ax.set_xlim(min(times + floor_ticks) / 1.5, max(times) * 4)
    else:
        ax.set_xlim(0, max(times) * 1.25)
    ax.set_xlabel("seconds per epoch (black tick: that backend's GEMM-only floor)")
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color="tab:blue", label="mlp_backends"), Patch(color="tab:gray", label="reference")],
              loc="lower right", fontsize=8)
    ax.set_title(f"{w.name}: {'-'.join(map(str, w.sizes))}, batch {w.batch}")
    ratios = [r["x_floor"] or 0 for r in shown][::-1]
    ax2.barh(names, ratios, color=colors)
    ax2.axvline(1.0, color="black", lw=1)
    for i, v in enumerate(ratios):
        ax2.annotate(f" {v:.2f}x", (v, i), va="center", fontsize=8)
    ax2.set_xlim(0, max(ratios + [1]) * 1.25)
    ax2.set_xlabel("epoch time / GEMM-only floor (1 = only matrix products)")
    ax2.set_yticklabels([])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "numpy": np.__version__,
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")}}
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [f"{p.get('internal_api')} {p.get('version')} {p.get('architecture')} "
                        f"threads={p.get('num_threads')}" for p in threadpool_info()]
    except ImportError:
        pass
    return info


# -- the command ------------------------------------------------------------
def add_arguments(p) -> None:
    """The `bench` options, on an argparse parser."""
    p.add_argument("--workload", default="small", choices=sorted(WORKLOADS),
                   help="small: 64-32-10 b32; mnist: 784-512-10 b256; wide: 1024-4096-4096-10 b1024 "
                        "(GPUs); tiny: smoke test (default: small)")
    p.add_argument("--backends", default=None,
                   help="comma-separated backends (name or name:device); default: every usable one "
                        "except array_api_strict")
    p.add_argument("--references", default=",".join(REFERENCES),
                   help=f"comma-separated competitors: {', '.join(REFERENCES)}, or none (default: all)")
    p.add_argument("--plain", action="store_true",
                   help="also time each backend's plain step (compile hook bypassed)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--repeats", type=int, default=3, help="timed rounds; the median is reported (default: 3)")
    p.add_argument("--epochs", type=int, default=1, help="epochs per round (default: 1)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="limit BLAS/OpenMP threads (NumPy, scikit-learn, torch) to N; "
                        "JAX only if it is not yet started (default: the libraries' own)")
    p.add_argument("--tf32", action="store_true",
                   help="let GPU matrix products use TF32 (reported as such; default: full float32)")
    p.add_argument("--json", default=None, metavar="PATH", help="write the results as JSON here")
    p.add_argument("--plot", default=None, metavar="PNG", help="draw a chart of the results here")


def _enable_tf32() -> None:
    # Before any library sets itself up: CuPy reads its variable at import.
    os.environ["CUPY_TF32"] = "1"
    try:
        import torch

        torch.backends.cuda.matmul.allow_tf32 = True
    except ImportError:
        pass
    try:
        import jax

        jax.config.update("jax_default_matmul_precision", "tensorfloat32")
    except ImportError:
        pass


def _limit_threads(n: int):
    """Hold BLAS and OpenMP pools at n threads; returns the limiter (keep it alive)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError as exc:
        raise InputError("--threads needs threadpoolctl; pip install threadpoolctl") from exc
    os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen={'true' if n > 1 else 'false'}")
    limiter = threadpool_limits(n)
    if "torch" in sys.modules or _importable("torch"):
        import torch

        torch.set_num_threads(n)
    return limiter


def _importable(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is not None


def run(args) -> int:
    """Run the benchmark the parsed `args` describe; print the table; write JSON/PNG."""
    if args.repeats < 1 or args.epochs < 1:
        raise InputError("--repeats and --epochs must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise InputError("--threads must be at least 1")
    for path in (args.json, args.plot):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise InputError(f"cannot write {path}: its folder does not exist; create it first")
    if args.tf32:
        _enable_tf32()
    limiter = _limit_threads(args.threads) if args.threads else None  # noqa: F841 - held for the run
    w = WORKLOADS[args.workload]
    X, y = make_data(w, args.dtype)
    entries = build_entries(args, w, X, y)
    record = measure(entries, args.repeats, args.epochs)
    rows = summarize(w, entries, record, args.dtype)
    meta = {"workload": w.__dict__ | {"flops_per_epoch": w.flops_per_epoch}, "dtype": args.dtype,
            "repeats": args.repeats, "epochs": args.epochs, "tf32": args.tf32, "threads": args.threads,
            "command": " ".join(sys.argv), "machine": machine()}
    notes = [f"threads limited to {args.threads}" if args.threads else "", "TF32 matrix products allowed" if args.tf32 else ""]
    print(markdown(w, rows, meta) + "".join(f"\n\n({n})" for n in notes if n))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
    if args.plot:
        plot(w, rows, args.plot)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python benchmarks/bench.py ...`: the same as `mlp-backends bench ...`."""
    from .cli import main as cli_main

    return cli_main(["bench", *(sys.argv[1:] if argv is None else argv)])

