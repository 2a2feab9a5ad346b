#!/usr/bin/env bash
# The GPU check in one command, for a CUDA machine with no network:
#
#   benchmarks/gpu_check.sh OUTDIR
#
# 1. installs nothing from the network: wheels carried in .whl/ (made here by
#    benchmarks/fetch_gpu_wheels.sh) and this checkout, offline, into a temp dir;
# 2. runs the test suite with the GPU backends required (a skipped CuPy fails);
# 3. runs the harness on `mnist` (CuPy fast and plain paths, torch, JAX, NumPy,
#    the PyTorch eager loop) and `wide` (full float32, then TF32), with --plot;
# 4. times JAX's buffer donation and torch's in-place update, on against off
#    (benchmarks/memory_savers.py);
# 5. writes logs, JSON and PNGs to OUTDIR and prints the GPU targets last.
# About 4 minutes on an H200; every stage has its own time limit.
set -uo pipefail
OUT=${1:?usage: benchmarks/gpu_check.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false

SITE=$(mktemp -d)
if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" .whl/*.whl \
        || { echo "gpu_check: installing the carried wheels failed" >&2; exit 1; }
fi
# The checkout itself, built offline: its metadata carries the backends' entry points.
"$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target "$SITE/pkg" . \
    > "$OUT/install.log" 2>&1 || { echo "gpu_check: pip install of the checkout failed (see $OUT/install.log)" >&2; exit 1; }
export PYTHONPATH="$PWD:$SITE:$SITE/pkg"
"$PY" -c "import array_api_compat" 2>/dev/null || {
    echo "gpu_check: array_api_compat is missing; run benchmarks/fetch_gpu_wheels.sh on a machine with pip access and carry .whl/" >&2
    exit 1
}

{ nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; \
  "$PY" -m mlp_backends.cli backends; } > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

echo "== tests (GPU backends required)"
XDIST=$("$PY" -c "import xdist" 2>/dev/null && echo "-n 8")
MLP_BACKENDS_REQUIRE=numpy,cupy,torch,jax timeout 150 "$PY" -m pytest -q -p no:cacheprovider $XDIST tests \
    > "$OUT/tests.log" 2>&1
echo "tests: exit $? ($(grep -v '^$' "$OUT/tests.log" | tail -n 1))" | tee "$OUT/tests.status"

bench() {  # name, then harness options
    local name=$1; shift
    echo "== bench $name"
    timeout 120 "$PY" -m mlp_backends.cli bench "$@" --json "$OUT/$name.json" --plot "$OUT/$name.png" \
        > "$OUT/$name.md" 2> "$OUT/$name.log"
    echo "bench $name: exit $?"
}
bench mnist --workload mnist --backends cupy,torch,jax,numpy --plain --references torch-eager --repeats 5
bench wide --workload wide --backends cupy,torch,jax --references torch-eager --repeats 5
bench wide_tf32 --workload wide --backends cupy,torch,jax --references torch-eager --repeats 5 --tf32
echo "== memory savers (JAX donation, torch in place), on against off (on by default on GPUs)"
timeout 90 "$PY" benchmarks/memory_savers.py --rounds 5 > "$OUT/memory_savers.txt" 2>&1
echo "memory savers: exit $?"; cat "$OUT/memory_savers.txt"

"$PY" - "$OUT" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])

def rows(name):
    p = out / f"{name}.json"
    return {r["name"]: r for r in json.loads(p.read_text())["rows"]} if p.exists() else {}

m, w, t = rows("mnist"), rows("wide"), rows("wide_tf32")
checks = []
status = (out / "tests.status").read_text().strip() if (out / "tests.status").exists() else "not run"
def check(what, ok, detail):
    checks.append((what, "PASS" if ok else ("FAIL" if ok is False else "n/a"), detail))

if "cupy" in m and "torch eager loop" in m:
    a, b = m["cupy"]["epoch_s"], m["torch eager loop"]["epoch_s"]
    check("mnist: CuPy epoch <= PyTorch eager (CUDA)", a <= b, f"{a:.4f} s vs {b:.4f} s")
else:
    check("mnist: CuPy epoch <= PyTorch eager (CUDA)", None, "missing rows")
if "cupy" in m and "cupy (plain)" in m:
    r = m["cupy (plain)"]["epoch_s"] / m["cupy"]["epoch_s"]
    check("mnist: CuPy graph path >= 3x plain CuPy (batch 256)", r >= 3, f"{r:.2f}x")
else:
    check("mnist: CuPy graph path >= 3x plain CuPy (batch 256)", None, "missing rows")
for label, rs in (("wide fp32", w), ("wide tf32 (opt-in)", t)):
    if "cupy" not in rs:
        check(f"{label}: CuPy >= 60% of the cuBLAS GEMM-only rate", None, "missing rows")
    else:
        frac = 1 / rs["cupy"]["x_floor"]
        check(f"{label}: CuPy >= 60% of the cuBLAS GEMM-only rate", frac >= 0.6 if label == "wide fp32" else None,
              f"{100 * frac:.0f}% ({rs['cupy']['gflops']:.0f} of {rs['cupy GEMM floor']['gflops']:.0f} GFLOP/s)")
print()
print(status)
print(f"{'GPU target':<58} {'result':<6} measured")
for what, ok, detail in checks:
    print(f"{what:<58} {ok:<6} {detail}")
print(f"logs, JSON and charts: {out}")
(out / "summary.txt").write_text("\n".join(f"{a}\t{b}\t{c}" for a, b, c in checks) + "\n")
EOF
