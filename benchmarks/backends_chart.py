"""The backends side by side, one picture: `python benchmarks/backends_chart.py`.

Runs the benchmark harness (mlp_backends.bench: round-robin rounds, a warm-up
epoch, medians, the device synchronized before each clock read) on each
workload, for every usable backend and the reference competitors, and draws
the training throughput of each entry as bars, one panel per workload, with
each backend's GEMM-only floor as a tick. Writes docs/backends.png by default,
and the rows as JSON next to it with --json.

    python benchmarks/backends_chart.py                                # small and mnist, all usable backends
    python benchmarks/backends_chart.py --workloads small --threads 1 --out docs/backends.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mlp_backends import bench  # noqa: E402
from mlp_backends.bench.workloads import WORKLOADS, make_data  # noqa: E402


def measure(workload: str, args) -> list[dict]:
    """The harness's rows for one workload (the same as `mlp-backends bench --workload ...`)."""
    w = WORKLOADS[workload]
    X, y = make_data(w, "float32")
    opts = argparse.Namespace(backends=args.backends, references=args.references, plain=False, dtype="float32",
                              threads=args.threads)
    entries = bench.build_entries(opts, w, X, y)
    record = bench.measure(entries, args.repeats, 1)
    return bench.summarize(w, entries, record, "float32")


def draw(results: dict[str, list[dict]], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 3.8), squeeze=False)
    for ax, (workload, rows) in zip(axes[0], results.items()):
        shown = [r for r in rows if r["kind"] != "floor"]
        floors = {r["name"]: r["samples_per_s"] for r in rows if r["kind"] == "floor"}
        names = [r["name"] for r in shown]
        rates = [r["samples_per_s"] for r in shown]
        colors = ["tab:blue" if r["kind"] == "library" else "tab:gray" for r in shown]
        ax.bar(range(len(shown)), rates, color=colors)
        for i, r in enumerate(shown):
            floor = floors.get(r["floor"])
            if floor:
                ax.plot([i - 0.4, i + 0.4], [floor, floor], color="black", lw=2)
        ax.set_xticks(range(len(shown)), names, rotation=30, ha="right", fontsize=8)
        ax.set_yscale("log")
        w = WORKLOADS[workload]
        ax.set_title(f"{workload}: {'-'.join(map(str, w.sizes))}, batch {w.batch}", fontsize=10)
        ax.set_ylabel("training samples per second")
    fig.suptitle(f"{title}\nblue: mlp_backends, gray: references, black tick: that backend's GEMM-only floor",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", default="small,mnist", help="comma-separated: " + ", ".join(sorted(WORKLOADS)))
    p.add_argument("--backends", default=None, help="comma-separated (default: every usable one but array_api_strict)")
    p.add_argument("--references", default=",".join(bench.REFERENCES), help="competitors, or none")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds per entry; the median is drawn")
    p.add_argument("--threads", type=int, default=None, help="BLAS/OpenMP threads (default: the libraries' own)")
    p.add_argument("--out", default="docs/backends.png", help="the PNG to write")
    p.add_argument("--json", default=None, help="also write the rows here")
    p.add_argument("--from-json", default=None, metavar="PATH", help="redraw a chart from rows written by --json")
    args = p.parse_args(argv)
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown or args.repeats < 1:
        p.error(f"unknown workload {', '.join(unknown)}" if unknown else "--repeats must be at least 1")
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        machine, results = saved["machine"], saved["results"]
    else:
        hold = bench.limit_threads(args.threads) if args.threads else None
        limits = hold() if hold else None  # noqa: F841 - the caps last while it lives
        results = {w: measure(w, args) for w in workloads}
        machine = bench.machine()
    draw(results, args.out, f"{machine['cpus']} CPUs, Python {machine['python']}, NumPy {machine['numpy']}, "
                            f"{machine['date_utc'][:10]}")
    if args.json and not args.from_json:
        Path(args.json).write_text(json.dumps({"machine": machine, "results": results}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
