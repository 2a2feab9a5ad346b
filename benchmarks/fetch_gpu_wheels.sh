#!/usr/bin/env bash
# Run on a machine with access to the package index, before benchmarks/gpu_check.sh runs on a
# GPU machine without one: downloads into .whl/ (ignored by git; copy it next to the checkout)
# exactly the wheels listed in benchmarks/gpu_wheels.txt, for CPython 3.12 on x86-64 Linux:
# binary wheels for that interpreter and platform, pure-Python wheels as they are.
#
#   bash benchmarks/fetch_gpu_wheels.sh
#
# A name that cannot be fetched is reported and the rest are still fetched; exit 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
failed=()
while read -r spec; do
    [[ -z "$spec" ]] && continue
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "$spec" || failed+=("$spec")
done < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' benchmarks/gpu_wheels.txt)
ls -l .whl
if ((${#failed[@]})); then
    echo "fetch_gpu_wheels: could not download: ${failed[*]}" >&2
    exit 1
fi
