"""The harness's results: rows of figures, a markdown table, a chart, the machine."""

from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np

from .entries import Entry
from .workloads import Workload


def summarize(w: Workload, entries: list[Entry], record: dict, dtype: str) -> list[dict]:
    """One row per entry: median and best epoch time, time per step, samples/s, GFLOP/s,
    ratios to its GEMM floor and to numpy, and memory."""
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
            "epoch_s": t, "best_epoch_s": min(record[e.name]["rounds"]),
            "step_us": t / steps * 1e6, "samples_per_s": w.n / t,
            "gflops": w.flops_per_epoch / t / 1e9,
            "x_floor": t / floor if floor else None,
            "x_numpy": t / numpy_s if numpy_s else None,
            "rounds_s": record[e.name]["rounds"],
            "peak_host_mb": record[e.name]["peak_mb"],
            "rss_mb_per_epoch": rss,
            "host_growth_mb": record[e.name]["growth_mb"],
        }
        if dev:
            row["device_peak_mb"] = max(d.get("peak_bytes", d.get("in_use_bytes", 0)) for d in dev) / 2**20
            in_use = [d.get("in_use_bytes", 0) / 2**20 for d in dev]
            row["device_in_use_mb_per_epoch"] = in_use
            row["device_growth_mb"] = in_use[-1] - in_use[0] if len(in_use) > 1 else 0.0
        if e.kind == "library":
            row["final_loss"] = by_name[e.name].last_loss
        rows.append(row)
    return rows


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def markdown(w: Workload, rows: list[dict], meta: dict) -> str:
    """The results as a Markdown table, headed by the workload, the settings and the machine."""
    head = (f"workload `{w.name}` ({w.note}): {w.n} samples, layers {'-'.join(map(str, w.sizes))}, "
            f"batch {w.batch}, {w.activation}, SGD, {meta['dtype']}; median of {meta['repeats']} rounds "
            f"of {meta['epochs']} epoch(s); {w.flops_per_epoch / 1e9:.3g} GFLOP per epoch")
    lines = [head, "",
             "| entry | epoch s | best s | step us | samples/s | GFLOP/s | x GEMM floor | x numpy "
             "| peak host MB | host growth MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['epoch_s']:.4g} | {r['best_epoch_s']:.4g} | {r['step_us']:.4g} "
                     f"| {r['samples_per_s']:.4g} | "
                     f"{r['gflops']:.4g} | {_fmt(r['x_floor'], '.3f')} | {_fmt(r['x_numpy'], '.3f')} | "
                     f"{r['peak_host_mb']:.0f} | {r['host_growth_mb']:+.1f} |")
    dev = [r for r in rows if "device_peak_mb" in r]
    if dev:
        lines += ["", "| entry | device peak MB | device growth MB |", "|---|---:|---:|"]
        lines += [f"| {r['name']} | {r['device_peak_mb']:.0f} | {r['device_growth_mb']:+.1f} |" for r in dev]
    return "\n".join(lines)


def plot(w: Workload, rows: list[dict], path: str) -> None:
    """Epoch times per entry with each backend's GEMM-only floor, and the ratios to that floor,
    as two bar charts in one PNG at `path` (needs matplotlib)."""
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
    """What ran the benchmark: Python, platform, CPUs, NumPy, the date, OpenBLAS settings and
    the BLAS libraries loaded (with threadpoolctl)."""
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
