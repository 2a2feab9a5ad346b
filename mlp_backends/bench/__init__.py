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
Here: the options and the round-robin run; `workloads` (shapes, data),
`entries` (what is timed), `report` (rows, table, chart), `memory` (RSS).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Callable

from ..errors import InputError
from .entries import Entry, FloorEntry, HandwrittenEntry, LibraryEntry, PlacedEntry, SklearnEntry, TorchEagerEntry  # noqa: F401
from .memory import peak_mb, reset_peak, rss_mb  # noqa: F401
from .report import machine, markdown, plot, summarize
from .workloads import WORKLOADS, Workload, make_data  # noqa: F401

REFERENCES = ("sklearn", "torch-eager", "numpy-handwritten")


def _progress(total: int, stream=None):
    """Progress on stderr. On a terminal: tqdm's bar (or a plain line redrawn in place
    without it). Otherwise (a log file, CI): one line per entry and round, and no
    carriage returns, which would pile every redraw into the log."""
    stream = stream or sys.stderr
    tty = stream.isatty()
    if tty:
        try:
            from tqdm import tqdm

            return tqdm(total=total, unit="epoch", file=stream, dynamic_ncols=True, leave=False)
        except ImportError:
            pass

    class Lines:
        n, text = 0, ""

        def set_description_str(self, text):
            self.text = text
            if not tty:
                print(f"bench: [{self.n}/{total} epochs] {text}", file=stream, flush=True)

        def update(self, k=1):
            self.n += k
            if tty:
                print(f"\r[{self.n}/{total}] {self.text}", end="", file=stream, flush=True)

        def close(self):
            if tty:
                print(file=stream)

    return Lines()


def build_entries(args, w: Workload, X, y) -> list[Entry]:
    """The library on each chosen backend, the references asked for, and the floors they need."""
    from ..registry import get_backend, list_backends

    refs = [r.strip() for r in (args.references or "").split(",") if r.strip() and r.strip() != "none"]
    unknown = set(refs) - set(REFERENCES)
    if unknown:
        raise InputError(f"unknown reference {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(REFERENCES)}, or none")
    infos = {i.name: i for i in list_backends()}
    if args.backends:
        names = list(dict.fromkeys(s.strip() for s in args.backends.split(",") if s.strip()))
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
        if be.trainer() is not None:  # trains elsewhere (a cluster): timed through the public fit
            entries.append(PlacedEntry(be, w, X, y, args.dtype))
            floor(get_backend("numpy"))
            continue
        floor(be)
        entries.append(LibraryEntry(be, w, X, y, args.dtype, plain=False, threads=args.threads))
        if args.plain:
            entries.append(LibraryEntry(be, w, X, y, args.dtype, plain=True, threads=args.threads))
    for ref in refs:
        if ref == "sklearn":
            try:
                entries.append(SklearnEntry(w, X, y))
            except ImportError:
                print("bench: scikit-learn is not installed; skipping its reference", file=sys.stderr)
                continue
        elif ref == "torch-eager":
            if "torch" not in infos or not infos["torch"].usable:
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
    record = {e.name: {"rounds": [], "rss_mb": [], "growth_mb": 0.0, "peak_mb": 0.0, "device": []}
              for e in entries}
    try:
        for r in range(-1, repeats):
            for e in entries:
                rec = record[e.name]
                reset_peak()
                before = rss_mb()
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
                    # Only this entry's own epochs count: the others run in between.
                    rec["growth_mb"] += rss_mb() - before
                rec["peak_mb"] = max(rec["peak_mb"], peak_mb())
    finally:
        bar.close()
    return record


# -- the command ------------------------------------------------------------
def add_arguments(p) -> None:
    """The `bench` options, on an argparse parser."""
    p.add_argument("--workload", default="small", choices=sorted(WORKLOADS),
                   help="small: 64-32-10 b32; net128: 128-256-10 b32; mnist: 784-512-10 b256; "
                        "wide: 1024-4096-4096-10 b1024 "
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
                        "JAX only if it is not yet started (default: the libraries' own, and "
                        "the library's entries choose theirs as fit does)")
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


def limit_threads(n: int) -> Callable:
    """Cap threads at n: JAX and torch now; returns `hold()`, which caps every BLAS and
    OpenMP pool loaded by then (call it once the entries are built; keep its result)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError as exc:
        raise InputError("--threads needs threadpoolctl; pip install threadpoolctl") from exc
    os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen={'true' if n > 1 else 'false'}")
    if "torch" in sys.modules or _importable("torch"):
        import torch

        torch.set_num_threads(n)
    return lambda: threadpool_limits(n)


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
    hold = limit_threads(args.threads) if args.threads else None
    w = WORKLOADS[args.workload]
    X, y = make_data(w, args.dtype)
    entries = build_entries(args, w, X, y)
    limits = hold() if hold else None  # noqa: F841 - the caps last while it lives
    record = measure(entries, args.repeats, args.epochs)
    rows = summarize(w, entries, record, args.dtype)
    meta = {"workload": w.__dict__ | {"flops_per_epoch": w.flops_per_epoch}, "dtype": args.dtype,
            "repeats": args.repeats, "epochs": args.epochs, "tf32": args.tf32, "threads": args.threads,
            "command": " ".join(sys.argv), "machine": machine()}
    notes = [f"threads limited to {args.threads}" if args.threads else "",
             "TF32 matrix products allowed" if args.tf32 else ""]
    print(markdown(w, rows, meta) + "".join(f"\n\n({n})" for n in notes if n))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
    if args.plot:
        plot(w, rows, args.plot)
    return 0

