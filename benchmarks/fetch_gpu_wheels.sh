#!/usr/bin/env bash
# Run HERE (a machine with package-registry access), before benchmarks/gpu_check.sh
# runs on a GPU machine that has no network: puts the pure-Python wheels the GPU
# image lacks into .whl/ (ignored by git; carry it with the working tree).
# The GPU image already holds numpy, cupy, torch, jax, scikit-learn, matplotlib,
# pytest, hypothesis and tqdm.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip download --quiet --no-deps --only-binary=:all: -d .whl \
    "array-api-compat==1.16.0" "array-api-strict==2.6.1"
ls -l .whl
