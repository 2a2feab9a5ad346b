"""Read time and peak memory per data format, against numpy.loadtxt, pandas and pyarrow.

    python benchmarks/data_bench.py                      # MNIST-sized: 60000 x 784 pixels + a label
    python benchmarks/data_bench.py --rows 2000 --repeats 1 --json out.json

Writes MNIST-shaped stand-ins once (random pixels 0-255 and labels 0-9; a
168 MB CSV at 60000 rows) under --dir, then measures each reader in a fresh
process: wall time (median of --repeats) and peak memory, as the growth of
the process's peak resident set (VmHWM) over what it held after its imports.
Memory is reported as a multiple of the final float32 array and time as a
multiple of numpy.loadtxt's on the same CSV, measured in the same run.
`train:` rows run one epoch of `mlp-backends train` on the file; their memory
is the whole command's peak over the interpreter with its imports.
Competitors that are not installed are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

D = 784


def _status(key: str) -> float:
    """A /proc/self/status figure in MB (Linux)."""
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the readers, each run in its own process -----------------------------------
def _csv_columns(path: Path) -> list[str]:
    return open(path).readline().strip().split(",")


def _pyarrow_read(path):
    import pyarrow as pa
    import pyarrow.csv as pc

    types = {c: pa.float32() for c in _csv_columns(path)}
    table = pc.read_csv(path, convert_options=pc.ConvertOptions(column_types=types))
    X = np.empty((table.num_rows, table.num_columns), np.float32)
    for j, column in enumerate(table.columns):
        X[:, j] = column.to_numpy()
    return X


def _pandas_read(path, engine):
    import pandas as pd

    return pd.read_csv(path, dtype=np.float32, engine=engine).to_numpy(np.float32)


def _train(path):
    from mlp_backends import cli

    code = cli.main(["train", "--data", str(path), "--epochs", "1", "--backend", "numpy", "--quiet",
                     "--batch-size", "128"])
    if code != 0:
        raise SystemExit(code)


def _train_anon(path):
    """One epoch from a folder on disk, sampling the anonymous resident set (RssAnon)
    every 20 ms: memory-mapped pages are file-backed and are not in it."""
    import threading

    peak, done = [_status("RssAnon")], threading.Event()

    def sample():
        while not done.wait(0.02):
            peak[0] = max(peak[0], _status("RssAnon"))

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        _train(path)
    finally:
        done.set()
        watcher.join()
    print(json.dumps({"anon_peak_mb": peak[0]}))


READERS = {
    # name: (format, function of the path, modules imported before the baseline)
    "numpy.loadtxt": ("csv", lambda p: np.loadtxt(p, delimiter=",", skiprows=1, dtype=np.float32), []),
    "mlp_backends csv (auto)": ("csv", lambda p: _ours("csv", p), ["pyarrow.csv"]),
    "mlp_backends csv (loadtxt)": ("csv", lambda p: _ours("csv", p, parser="loadtxt"), []),
    "pyarrow.csv.read_csv": ("csv", _pyarrow_read, ["pyarrow.csv"]),
    "pandas (C engine)": ("csv", lambda p: _pandas_read(p, "c"), ["pandas"]),
    "pandas (pyarrow engine)": ("csv", lambda p: _pandas_read(p, "pyarrow"), ["pandas", "pyarrow.csv"]),
    "mlp_backends npz": ("npz", lambda p: _ours("npz", p), []),
    "numpy.load npz": ("npz", lambda p: np.load(p)["X"], []),
    "mlp_backends idx.gz": ("idx", lambda p: _ours("idx", p), []),
}
TRAIN_IMPORTS = ["mlp_backends.cli", "mlp_backends.model", "sklearn.model_selection", "pyarrow.csv", "tqdm",
                 "backends.numpy", "backends.numpy_inplace"]
for fmt in ("csv", "npz", "idx"):
    READERS[f"train: {fmt}"] = (fmt, _train, TRAIN_IMPORTS)
READERS["train: npy folder"] = ("npy", _train_anon, TRAIN_IMPORTS)


def _ours(fmt, path, **kw):
    from mlp_backends import csvfile, datafiles

    if fmt == "csv":
        return csvfile.read_csv(path, dtype=np.float32, **kw)[0]
    if fmt == "npz":
        return datafiles.read_npz(path, dtype=np.float32)[0]
    return datafiles.read_idx(path, dtype=np.float32)[0]


def child(name: str, path: str) -> None:
    """Run one reader here and print its figures as JSON (the parent starts this)."""
    import importlib

    _, function, imports = READERS[name]
    for module in imports:
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    if name.startswith("train:"):  # the backend registry and its probe are part of the interpreter here
        from mlp_backends import get_backend

        get_backend("numpy")
    base, base_anon = _status("VmRSS"), _status("RssAnon")
    started = time.perf_counter()
    function(Path(path))
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_mb": _status("VmHWM") - base, "base_mb": base,
                      "base_anon_mb": base_anon}))


# -- the files ---------------------------------------------------------------------
def write_files(folder: Path, rows: int) -> dict[str, Path]:
    """MNIST-shaped stand-ins in every format, written once per size."""
    from mlp_backends.bench import entries  # noqa: F401 - only to fail early outside the repository

    folder.mkdir(parents=True, exist_ok=True)
    files = {"csv": folder / f"mnist{rows}.csv", "npz": folder / f"mnist{rows}_float32.npz",
             "idx": folder / f"r{rows}" / "train-images-idx3-ubyte.gz", "npy": folder / f"npy{rows}"}
    if all(p.exists() for p in files.values()):
        return files
    _write_npy_folder(files["npy"], rows)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(rows, D), dtype=np.uint8)
    y = rng.integers(0, 10, size=rows, dtype=np.uint8)
    with open(files["csv"], "w") as f:
        f.write(",".join([f"p{j}" for j in range(D)] + ["label"]) + "\n")
        for lo in range(0, rows, 5000):
            np.savetxt(f, np.column_stack([X[lo:lo + 5000], y[lo:lo + 5000]]), fmt="%d", delimiter=",")
    np.savez(files["npz"], X=X.astype(np.float32), y=y)
    _write_idx(files["idx"], X.reshape(rows, 28, 28))
    _write_idx(files["idx"].parent / "train-labels-idx1-ubyte.gz", y)
    return files


def _write_npy_folder(folder: Path, rows: int) -> None:
    """X.npy (rows x 784 float32) and y.npy, written a block at a time (any size)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    X = np.lib.format.open_memmap(folder / "X.npy", mode="w+", dtype=np.float32, shape=(rows, D))
    for lo in range(0, rows, 20000):
        hi = min(lo + 20000, rows)
        X[lo:hi] = rng.integers(0, 256, size=(hi - lo, D), dtype=np.uint8)
    X.flush()
    del X
    np.save(folder / "y.npy", rng.integers(0, 10, size=rows, dtype=np.uint8))


def _write_idx(path: Path, array: np.ndarray) -> None:
    import gzip
    import struct

    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.tobytes())


# -- a memory cap: a cgroup of our own, under the one this process runs in -------------
def _own_memory_cgroup() -> tuple[Path, str] | None:
    """(folder, "v1" or "v2") of this process's memory cgroup where it can hold a child."""
    try:
        lines = open("/proc/self/cgroup").read().splitlines()
    except OSError:
        return None
    for line in lines:
        number, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            folder = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            if (folder / "memory.limit_in_bytes").exists() and os.access(folder, os.W_OK):
                return folder, "v1"
        if number == "0":
            for root in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
                folder = root / path.lstrip("/")
                controls = folder / "cgroup.subtree_control"
                if controls.exists() and "memory" in controls.read_text().split() and os.access(folder, os.W_OK):
                    return folder, "v2"
    return None


class MemoryCap:
    """A child cgroup limited to `cap_mb` (memory-mapped pages that were read count against
    it and are dropped to stay under it; anonymous memory cannot be, so a process that
    needs more is killed). Removed on exit."""

    def __init__(self, cap_mb: int):
        found = _own_memory_cgroup()
        if found is None:
            raise SystemExit("--memory-cap needs a writable memory cgroup (cgroup v1's memory controller, or "
                             "v2 with memory delegated); none here: drop --memory-cap")
        parent, self.version = found
        self.folder = parent / f"mlp_backends_data_bench_{os.getpid()}"
        self.folder.mkdir()
        limit = str(cap_mb << 20)
        if self.version == "v1":
            (self.folder / "memory.limit_in_bytes").write_text(limit)
        else:
            (self.folder / "memory.max").write_text(limit)
            (self.folder / "memory.swap.max").write_text("0")

    def enter(self) -> None:
        """Move the calling process in (a child, between fork and exec)."""
        (self.folder / "cgroup.procs").write_text(str(os.getpid()))

    def figures(self) -> dict:
        """Peak charge (resident pages, mapped file pages included) and how often the cap was hit."""
        read = lambda name: (self.folder / name).read_text()  # noqa: E731
        if self.version == "v1":
            return {"cap_peak_mb": int(read("memory.max_usage_in_bytes")) / 2**20,
                    "cap_hits": int(read("memory.failcnt"))}
        events = dict(line.split() for line in read("memory.events").splitlines())
        peak = int(read("memory.peak")) / 2**20 if (self.folder / "memory.peak").exists() else float("nan")
        return {"cap_peak_mb": peak, "cap_hits": int(events.get("max", 0))}

    def close(self) -> None:
        try:
            self.folder.rmdir()
        except OSError:
            pass


def _drop_from_page_cache(folder: Path) -> None:
    """Evict the folder's files from the page cache (written just now, their pages are charged
    to this process's cgroup): the capped run then reads, and is charged for, every page."""
    for path in folder.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def measure(name: str, path: Path, repeats: int, cap: MemoryCap | None = None) -> dict | None:
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, __file__, "--child", name, str(path)], capture_output=True,
                             text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                             preexec_fn=cap.enter if cap else None)
        if cap is not None and out.returncode < 0:
            raise RuntimeError(f"{name} was killed (signal {-out.returncode}) under the memory cap: "
                               f"{cap.figures()}; {out.stderr.strip()[-400:]}")
        if out.returncode != 0:
            if "ModuleNotFoundError" in out.stderr or "ImportError" in out.stderr:
                return None  # a competitor that is not installed
            raise RuntimeError(f"{name} failed: {out.stderr.strip()[-800:]}")
        run = {}
        for line in out.stdout.strip().splitlines():
            if line.startswith("{"):
                run.update(json.loads(line))
        if cap is not None:
            run.update(cap.figures())
        runs.append(run)
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=60000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "mlp_backends_data_bench")
    p.add_argument("--only", nargs="+", metavar="NAME", help="readers whose name contains one of these")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--disk-gb", type=float, default=0, metavar="GB",
                   help="also train one epoch from a folder of .npy files of this size on disk "
                        "(X.npy, float32), reporting its peak anonymous memory (RssAnon)")
    p.add_argument("--memory-cap", type=int, metavar="MB",
                   help="run the --disk-gb epoch in a cgroup limited to this much memory (resident pages, "
                        "mapped file pages included): data larger than the memory it may use")
    p.add_argument("--child", nargs=2, metavar=("READER", "PATH"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    if args.memory_cap and not args.disk_gb:
        p.error("--memory-cap caps the --disk-gb epoch; add --disk-gb GB")
    files = write_files(args.dir, args.rows)
    float32_mb = args.rows * D * 4 / 2**20
    sizes = {fmt: sum(f.stat().st_size for f in ([path] if path.is_file() else path.iterdir())) / 2**20
             for fmt, path in files.items()}
    print(f"{args.rows} x {D} float32 = {float32_mb:.0f} MB; files: "
          + ", ".join(f"{fmt} {mb:.0f} MB" for fmt, mb in sizes.items()) + f"; median of {args.repeats}")
    results = {}
    for name, (fmt, _, _) in READERS.items():
        if args.only and not any(word in name for word in args.only):
            continue
        figures = measure(name, files[fmt], args.repeats)
        if figures is None:
            print(f"{name:28s} not installed")
            continue
        results[name] = {"format": fmt, **figures}
    if args.disk_gb:
        rows = int(args.disk_gb * 2**30 / (D * 4))
        big = args.dir / f"npy{rows}"
        if not big.exists():
            _write_npy_folder(big, rows)
        cap = MemoryCap(args.memory_cap) if args.memory_cap else None
        if cap is not None:
            _drop_from_page_cache(big)
        try:
            r = measure("train: npy folder", big, 1, cap)
        finally:
            if cap is not None:
                cap.close()
        r.update(format="npy", rows=rows, data_mb=rows * D * 4 / 2**20)
        capped = f", under a {args.memory_cap} MB cap" if cap else ""
        results[f"train: npy folder, {args.disk_gb:g} GB{capped}"] = r
        print(f"one epoch from {rows} x {D} float32 on disk ({r['data_mb']:.0f} MB){capped}: {r['seconds']:.0f} s, "
              f"peak anonymous memory {r['anon_peak_mb']:.0f} MB (the interpreter with its imports: "
              f"{r['base_anon_mb']:.0f} MB)")
        if cap:
            print(f"the cap's peak charge {r['cap_peak_mb']:.0f} MB (mapped pages included); cap reached "
                  f"{r['cap_hits']} times" + (": pages already read were dropped to stay under it"
                                             if r["cap_hits"] else ""))
    base = results.get("numpy.loadtxt", {}).get("seconds")
    print(f"{'reader':28s} {'format':6s} {'time s':>7s} {'x loadtxt':>9s} {'peak MB':>8s} {'x float32':>9s}")
    for name, r in results.items():
        ratio = f"{r['seconds'] / base:9.2f}" if base else f"{'-':>9s}"
        r["x_loadtxt"] = r["seconds"] / base if base else None
        r["x_float32"] = r["peak_mb"] / r.get("data_mb", float32_mb)
        print(f"{name:28s} {r['format']:6s} {r['seconds']:7.2f} {ratio} {r['peak_mb']:8.0f} {r['x_float32']:9.2f}"
              + (f"  RssAnon peak {r['anon_peak_mb']:.0f} MB" if "anon_peak_mb" in r else ""))
    if args.json:
        args.json.write_text(json.dumps({"rows": args.rows, "float32_mb": float32_mb, "file_mb": sizes,
                                         "repeats": args.repeats, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
