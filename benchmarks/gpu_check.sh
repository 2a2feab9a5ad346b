#!/usr/bin/env bash
# The GPU check in one command, on a CUDA machine without network access:
#
#   bash benchmarks/gpu_check.sh [OUTDIR]        (OUTDIR: default $OUT, else ./gpu_check_out)
#
# It expects the image to hold Python 3.12 with numpy, cupy-cuda13x, torch, jax, scikit-learn,
# matplotlib, pytest, pytest-xdist, hypothesis, tqdm and threadpoolctl, and .whl/ next to this
# checkout with the rest (benchmarks/gpu_wheels.txt; made by benchmarks/fetch_gpu_wheels.sh).
# Stages, each with its own time limit, each writing its results to OUTDIR as soon as it ends
# (OUTDIR/progress.txt: one line per stage, exit code and seconds):
#   machine   machine.txt: GPU, CUDA driver and runtime, Python, numpy, cupy, torch, jax
#   install   each missing wheel from .whl/ by name, offline (one that fails does not stop the
#             others), then this checkout without dependencies (its backends' entry points)
#   tests     the GPU-focused tests, with cupy, torch and jax required and
#             MLP_BACKENDS_STRICT_FAST=1 (a fast path that falls back fails), on 8 workers
#   bench     mnist (batch 256, with plain CuPy and PyTorch's eager loop), wide (float32),
#             small (the article's net, GPU against NumPy on the CPU); strict as well
#   memory    device memory across epochs and repeated fits (benchmarks/gpu_memory.py), then
#             JAX donation and the PyTorch in-place step on against off (benchmarks/memory_savers.py)
#   summary   summary.txt: each GPU target, PASS / FAIL / n/a, with its figures
# The whole run stops starting stages after 7 minutes; typically it takes 3 to 4.
# GPU_CHECK_STAGES="machine install" runs only the stages named (a dry run on a CPU machine).
set -uo pipefail
OUT=${1:-${OUT:-gpu_check_out}}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
STAGES=${GPU_CHECK_STAGES:-machine install tests bench memory summary}
BUDGET=420  # seconds after which no stage starts, and no stage runs past
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false MPLBACKEND=Agg
: > "$OUT/progress.txt"

wanted() { [[ " $STAGES " == *" $1 "* ]]; }

# stage NAME LIMIT COMMAND...: run it with a time limit cut to what is left of the budget,
# output to OUT/NAME.log, and a line in progress.txt.
stage() {
    local name=$1 limit=$2; shift 2
    local left=$((BUDGET - SECONDS))
    if ((left < 15)); then
        echo "$name: skipped, out of time" | tee -a "$OUT/progress.txt"
        return 1
    fi
    ((limit > left)) && limit=$left
    local start=$SECONDS
    echo "== $name (limit ${limit}s)"
    # A child bash runs the command, so that it may be one of the functions below (exported).
    timeout --kill-after=10 "$limit" bash -c '"$@"' "$name" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name: exit $rc in $((SECONDS - start))s$( ((rc == 124)) && echo ' (time limit)')" | tee -a "$OUT/progress.txt"
    return $rc
}

machine() {
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || echo "nvidia-smi: not found"
    "$PY" - <<'EOF'
import importlib, platform, sys
print("python", sys.version.split()[0], platform.machine())
for name in ("numpy", "cupy", "torch", "jax", "jaxlib", "array_api_compat"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as exc:  # noqa: BLE001
        print(name, "unavailable:", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
try:
    import cupy
    rt = cupy.cuda.runtime
    v = lambda n: f"{n // 1000}.{n % 1000 // 10}"  # noqa: E731
    print("cuda driver (cupy)", v(rt.driverGetVersion()), "runtime (cupy)", v(rt.runtimeGetVersion()))
except Exception as exc:  # noqa: BLE001
    print("cuda (cupy): unavailable:", type(exc).__name__)
try:
    import torch
    print("cuda (torch build)", torch.version.cuda, "available", torch.cuda.is_available(),
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
except Exception as exc:  # noqa: BLE001
    print("torch cuda: unavailable:", type(exc).__name__)
try:
    import jax
    print("jax devices", jax.devices())
except Exception as exc:  # noqa: BLE001
    print("jax devices: unavailable:", type(exc).__name__)
EOF
}

SITE="$OUT/site"
carried() {  # DIR SPEC...: install wheels from .whl/ into DIR, offline, without dependencies
    local dir=$1; shift
    "$PY" -m pip install --quiet --disable-pip-version-check --no-index --find-links .whl --no-deps \
        --no-compile --upgrade --target "$dir" "$@"
}
install() {
    mkdir -p "$SITE"
    local failed=() missing=() spec
    # The listed wheels whose distribution the image lacks (one interpreter start for all).
    mapfile -t missing < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' benchmarks/gpu_wheels.txt | "$PY" -c '
import importlib.metadata as m, sys
for spec in filter(None, sys.stdin.read().split()):
    try:
        m.version(spec.split("==")[0])
    except m.PackageNotFoundError:
        print(spec)')
    # All at once when every wheel is there; else one name at a time, so that one fails alone.
    if ((${#missing[@]})) && ! carried "$SITE" "${missing[@]}" 2>/dev/null; then
        for spec in "${missing[@]}"; do
            carried "$SITE" "$spec" || failed+=("${spec%%==*}")
        done
    fi
    ((${#missing[@]})) && echo "from .whl/: ${missing[*]}"
    # The checkout, built offline: its metadata holds the backends' entry points. The carried
    # setuptools comes first on the path even where the image has one: an old one cannot build
    # a wheel without the `wheel` package.
    carried "$SITE/build" "$(grep -E '^setuptools==' benchmarks/gpu_wheels.txt)" || failed+=("setuptools")
    PYTHONPATH="$SITE/build:$SITE" "$PY" -m pip install --quiet --disable-pip-version-check --no-index --no-deps \
        --no-build-isolation --no-compile --target "$SITE/pkg" . || failed+=("this checkout")
    PYTHONPATH="$SITE/pkg:$SITE" "$PY" -m mlp_backends.cli backends || failed+=("mlp-backends backends")
    if ((${#failed[@]})); then
        echo "not installed: ${failed[*]}"
        return 1
    fi
}
export PYTHONPATH="$SITE/pkg:$SITE${PYTHONPATH:+:$PYTHONPATH}"

TESTS="tests/test_cupy_step.py tests/test_torch_graph.py tests/test_fastpaths.py tests/test_inplace.py
       tests/test_agreement.py tests/test_host_reads.py tests/test_model.py tests/test_train_loop.py
       tests/test_registry.py tests/test_nn.py tests/test_cupy_staging.py tests/test_outofcore.py
       tests/test_eval_blocks.py"
tests() {
    local workers=()
    "$PY" -c "import xdist" 2>/dev/null && workers=(-n 8)
    # shellcheck disable=SC2086 - TESTS is a list of paths
    MLP_BACKENDS_STRICT_FAST=1 MLP_BACKENDS_REQUIRE=numpy,cupy,torch,jax \
        "$PY" -m pytest -q -p no:cacheprovider "${workers[@]}" -k "not array_api_strict and not dask" \
        --junitxml="$OUT/tests.xml" $TESTS
}

bench() {  # name, then the harness's options
    local name=$1; shift
    MLP_BACKENDS_STRICT_FAST=1 "$PY" -m mlp_backends.cli bench "$@" --json "$OUT/$name.json" --plot "$OUT/$name.png" \
        > "$OUT/$name.md"
}

export PY OUT SITE TESTS
export -f machine carried install tests bench

wanted machine && stage machine 60 machine && cp "$OUT/machine.log" "$OUT/machine.txt"
wanted install && stage install 90 install
wanted tests && stage tests 170 tests
if wanted bench; then
    stage bench_mnist 80 bench mnist --workload mnist --backends cupy,torch,jax,numpy --plain \
        --references torch-eager --repeats 5
    stage bench_wide 60 bench wide --workload wide --backends cupy,torch,jax --references torch-eager --repeats 3
    stage bench_small 45 bench small --workload small --backends cupy,torch,jax,numpy --references none --repeats 3
fi
wanted memory && stage memory 45 env MLP_BACKENDS_STRICT_FAST=1 "$PY" benchmarks/gpu_memory.py --fits 3 --epochs 2
# JAX's buffer donation and PyTorch's in-place update (with its CUDA graphs), on against off.
wanted memory && stage savers 40 env MLP_BACKENDS_STRICT_FAST=1 "$PY" benchmarks/memory_savers.py --rounds 3

wanted summary || exit 0
"$PY" - "$OUT" <<'EOF' | tee "$OUT/summary.txt"
import json, pathlib, sys

out = pathlib.Path(sys.argv[1])
GPU = ("cupy", "torch", "jax")


def rows(name):
    p = out / f"{name}.json"
    return {r["name"]: r for r in json.loads(p.read_text())["rows"]} if p.exists() else {}


checks = []


def check(what, ok, detail):
    checks.append((what, "n/a" if ok is None else ("PASS" if ok else "FAIL"), detail))


m, w, s = rows("mnist"), rows("wide"), rows("small")
eager = m.get("torch eager loop")
best = min((m[b] for b in GPU if b in m), key=lambda r: r["epoch_s"], default=None)
if best and eager:
    r = best["epoch_s"] / eager["epoch_s"]
    check("mnist b256: best GPU epoch <= 0.5x PyTorch eager", r <= 0.5, f"{best['name']} {r:.2f}x")
else:
    check("mnist b256: best GPU epoch <= 0.5x PyTorch eager", None, "missing rows")
if "cupy" in m and eager:
    r = m["cupy"]["epoch_s"] / eager["epoch_s"]
    check("mnist b256: CuPy epoch <= PyTorch eager", r <= 1, f"{r:.2f}x")
    if "cupy (plain)" in m:
        check("mnist b256: CuPy compiled vs plain (information)", None,
              f"{m['cupy (plain)']['epoch_s'] / m['cupy']['epoch_s']:.2f}x faster")
else:
    check("mnist b256: CuPy epoch <= PyTorch eager", None, "missing rows")
fracs = {b: 1 / w[b]["x_floor"] for b in GPU if b in w and w[b].get("x_floor")}
if fracs:
    b = max(fracs, key=fracs.get)
    check("wide fp32: >= 70% of the cuBLAS GEMM-only rate", fracs[b] >= 0.7,
          ", ".join(f"{k} {100 * v:.0f}%" for k, v in fracs.items()))
else:
    check("wide fp32: >= 70% of the cuBLAS GEMM-only rate", None, "missing rows")
gpu_small = min((s[b] for b in GPU if b in s), key=lambda r: r["epoch_s"], default=None)
if gpu_small and "numpy" in s:
    r = gpu_small["epoch_s"] / s["numpy"]["epoch_s"]
    check("small (the article's net): fastest GPU faster than the CPU", r < 1, f"{gpu_small['name']} {r:.2f}x numpy")
else:
    check("small (the article's net): fastest GPU faster than the CPU", None, "missing rows")
memory = [json.loads(line) for line in (out / "memory.log").read_text().splitlines()
          if line.startswith("{")] if (out / "memory.log").exists() else []
if memory:
    worst = max(abs(r["in_use_growth_mb"] or 0) + abs(r["device_used_growth_mb"] or 0) for r in memory)
    check("device memory flat across epochs and fits (< 1 MB)", worst < 1,
          "; ".join(f"{r['backend']} {r['in_use_growth_mb']} / {r['device_used_growth_mb']} MB" for r in memory))
else:
    check("device memory flat across epochs and fits (< 1 MB)", None, "no memory stage")
progress = (out / "progress.txt").read_text() if (out / "progress.txt").exists() else ""
print(progress.strip())
print(f"{'GPU target':<62} {'result':<6} measured")
for what, ok, detail in checks:
    print(f"{what:<62} {ok:<6} {detail}")
EOF
