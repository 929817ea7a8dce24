#!/usr/bin/env bash
# Rebuild .whl/ (git-ignored) from benchmarks/gpu_wheels.txt: cp312 manylinux x86_64 or pure-Python
# wheels for the GPU machine (Python 3.12, no package index there). Run from the repository root on a
# machine with pip and network access; benchmarks/gpu_check.sh installs them on the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
rm -rf .whl && mkdir -p .whl
grep -vE '^\s*(#|$)' benchmarks/gpu_wheels.txt | xargs "$PY" -m pip download -q --no-deps --only-binary=:all: \
  --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl
ls .whl | wc -l | xargs echo "wheels in .whl/:"
du -sh .whl
