#!/usr/bin/env bash
# The prepared GPU check (issue 10, item 6): one command on a CUDA machine, under 5.5 minutes.
#
#   bash benchmarks/gpu_check.sh            (from the repository root, or anywhere)
#
# 1. installs the carried wheels in .whl/ when present (benchmarks/fetch_gpu_wheels.sh makes them);
# 2. prints the card (nvidia-smi) and the Python / torch / CUDA versions;
# 3. runs the CUDA-marked tests (pytest -m cuda on the files that hold them);
# 4. the digits claim on the card in bf16 (benchmarks/reproduce_digits.py --claim);
# 5. benchmarks/bench_gpu_epoch.py: our loop vs the authors'-style loop, proxns/baseline step, slim latency.
# Everything lands in ${OUT:-gpu-check-output}/ (at most 8 files); the summary table is printed last.
# Each part runs under its own `timeout`, so one hang cannot eat the rest. Without a CUDA GPU it exits 2
# with one line. GPU_CHECK_SECONDS (default 330) is the whole script's budget.
set -u
cd "$(dirname "$0")/.." || exit 1
START=$SECONDS
BUDGET=${GPU_CHECK_SECONDS:-330}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

DEVICE=cuda
BENCH_EXTRA=()
# GPU_CHECK_DRY_RUN=1: the script's own plumbing on a CPU (tiny bench, no gate); not a measurement.
if [ "${GPU_CHECK_DRY_RUN:-0}" = 1 ]; then
    DEVICE=cpu
    BENCH_EXTRA=(--tiny --settings fp32,bf16-cl)
    echo "gpu_check: DRY RUN on the CPU (GPU_CHECK_DRY_RUN=1): plumbing only, no figure means anything"
# The gate: one line and exit 2 where no CUDA GPU is usable (before anything is installed or written).
elif ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
    echo "gpu_check: needs a CUDA GPU, and torch.cuda.is_available() is false for $PY here; run it on a GPU machine"
    exit 2
fi

OUT=${OUT:-gpu-check-output}
mkdir -p "$OUT"
# Files in $OUT (8 at most come back from the device tool): machine.txt, pytest-cuda.log,
# digits-claim.log, digits-claim.json, bench.log, bench.md, bench.json, summary.md.

left() { echo $((BUDGET - (SECONDS - START))); }
at_most() { echo $(($1 < $2 ? $1 : $2)); }
status() { printf '%s\n' "$1" | tee -a "$OUT/summary.md"; }
: >"$OUT/summary.md"

if [ "${GPU_CHECK_DRY_RUN:-0}" != 1 ] && compgen -G ".whl/*.whl" >/dev/null; then
    if ! "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl; then
        echo "gpu_check: installing the wheels of .whl/ failed"
        exit 1
    fi
    export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
    echo "== installed $(ls .whl/*.whl | wc -l) carried wheels into /tmp/site ($((SECONDS - START)) s)"
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
    echo "== no wheels installed (no .whl/, or a dry run): using the packages the machine has"
fi

echo "== the machine"
{
nvidia-smi || true
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw,utilization.gpu \
    --format=csv 2>/dev/null || true
"$PY" - <<'PY'
import platform, sys, torch
print(f"python {platform.python_version()} ({sys.executable}); torch {torch.__version__}; CUDA {torch.version.cuda}; "
      f"cuDNN {torch.backends.cudnn.version()}; {torch.cuda.device_count()} GPU(s): "
      + ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())))
try:
    import triton
    print(f"triton {triton.__version__}")
except Exception as e:  # noqa: BLE001
    print(f"triton: not importable ({e})")
for m in ("pydantic", "sqlalchemy", "celery", "fastapi", "proxns_core.train", "worker.app", "api.main"):
    try:
        __import__(m)
    except Exception as e:  # noqa: BLE001
        print(f"IMPORT FAILS: {m}: {type(e).__name__}: {e}")
PY
} 2>&1 | tee "$OUT/machine.txt"

# (a) the CUDA-marked tests: only the files holding them, so that modules needing what this machine
# lacks (browsers, Postgres drivers) are not even collected.
CUDA_TESTS=$(grep -rlE --include='test_*.py' 'mark\.cuda' tests | sort | tr '\n' ' ')
T=$(at_most 110 $(($(left) / 3)))
echo "== (a) CUDA-marked tests: ${CUDA_TESTS:-none found} (limit ${T} s)"
if [ -n "$CUDA_TESTS" ]; then
    t0=$SECONDS
    # shellcheck disable=SC2086
    timeout -k 5 "$T" "$PY" -m pytest -q -m cuda -p no:cacheprovider -o addopts=-ra $CUDA_TESTS 2>&1 |
        tee "$OUT/pytest-cuda.log"
    rc=${PIPESTATUS[0]}
    tail_line=$(grep -E '(passed|failed|error|skipped|no tests ran)' "$OUT/pytest-cuda.log" | tail -1)
    case $rc in
        0) status "- CUDA-marked tests: PASS — ${tail_line} ($((SECONDS - t0)) s)" ;;
        124 | 137) status "- CUDA-marked tests: TIMED OUT after ${T} s — ${tail_line}" ;;
        *) status "- CUDA-marked tests: FAIL (exit $rc) — ${tail_line} ($((SECONDS - t0)) s)" ;;
    esac
else
    status "- CUDA-marked tests: none found under tests/"
fi

# (b) the digits claim on the card, in bf16.
T=$(at_most 60 $(($(left) / 3)))
echo "== (b) digits claim on $DEVICE, bf16 (limit ${T} s)"
t0=$SECONDS
timeout -k 5 "$T" "$PY" benchmarks/reproduce_digits.py --claim --device "$DEVICE" --precision bf16 \
    --json "$OUT/digits-claim.json" 2>&1 | tee "$OUT/digits-claim.log"
rc=${PIPESTATUS[0]}
claim_line=$(grep -E '^digits claim' "$OUT/digits-claim.log" | tail -1)
case $rc in
    0) status "- ${claim_line:-digits claim: PASS}" ;;
    124 | 137) status "- digits claim: TIMED OUT after ${T} s" ;;
    *) status "- ${claim_line:-digits claim: FAIL (exit $rc)} (exit $rc, $((SECONDS - t0)) s)" ;;
esac

# (c) the epoch / step / latency bench, with what is left (its own budget a little under its limit).
T=$(( $(left) - 10 ))
echo "== (c) bench_gpu_epoch.py (limit ${T} s)"
if [ "$T" -lt 40 ]; then
    status "- bench_gpu_epoch.py: not run, ${T} s left"
else
    t0=$SECONDS
    timeout -k 5 "$T" "$PY" benchmarks/bench_gpu_epoch.py --device "$DEVICE" --budget $((T - 15)) \
        --out "$OUT/bench.md" --json "$OUT/bench.json" "${BENCH_EXTRA[@]}" 2>&1 | tee "$OUT/bench.log"
    rc=${PIPESTATUS[0]}
    case $rc in
        0) status "- bench_gpu_epoch.py: done in $((SECONDS - t0)) s" ;;
        124 | 137) status "- bench_gpu_epoch.py: TIMED OUT after ${T} s (the table below holds the parts that finished)" ;;
        *) status "- bench_gpu_epoch.py: FAILED (exit $rc) after $((SECONDS - t0)) s (partial table below)" ;;
    esac
fi

status "- gpu_check.sh: $((SECONDS - START)) s in all"
echo
echo "================================ summary ================================"
if [ -f "$OUT/bench.md" ]; then
    cat "$OUT/bench.md" >>"$OUT/summary.md"
fi
cat "$OUT/summary.md"
