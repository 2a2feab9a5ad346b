"""Cold start: how long `mlp-backends train` and `MLP(...)` take with `auto` against `numpy`.

    python benchmarks/cold_start.py [--repeats 7] [--busy]

Each command runs in a fresh process, auto and numpy alternating, so a load
that drifts slows both alike; reported: the median wall time of each and the
ratio auto / numpy. On a machine without a GPU driver auto must cost nothing
extra: it then imports no GPU-capable library (mlp_backends/drivers.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlp_backends.bench.busy import busy_core  # noqa: E402

CASES = {
    "mlp-backends train --epochs 1": [sys.executable, "-m", "mlp_backends.cli", "train", "--epochs", "1",
                                      "--backend", "{backend}"],
    "MLP(64, 32, 10)": [sys.executable, "-c", "from mlp_backends import MLP; MLP(64, 32, 10, backend='{backend}')"],
}


def run_once(cmd: list[str], backend: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "MLP_BACKEND"}
    start = time.perf_counter()
    subprocess.run([part.format(backend=backend) for part in cmd], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--busy", action="store_true", help="keep one core busy with a spinning process meanwhile")
    args = p.parse_args(argv)
    print(f"| command ({'busy' if args.busy else 'idle'}, {args.repeats} runs each) "
          "| auto (s) | numpy (s) | auto / numpy |\n|---|---:|---:|---:|")
    with busy_core(args.busy):
        for label, cmd in CASES.items():
            run_once(cmd, "numpy")  # warm the file cache once
            times: dict[str, list[float]] = {"auto": [], "numpy": []}
            for _ in range(args.repeats):
                for backend in times:
                    times[backend].append(run_once(cmd, backend))
            auto, numpy = (statistics.median(times[b]) for b in ("auto", "numpy"))
            print(f"| `{label}` | {auto:.2f} | {numpy:.2f} | {auto / numpy:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
