#!/usr/bin/env bash
# The GPU section of BENCHMARKS.md in one script, meant to fit one 10-minute call on a lent
# GPU machine: cells after --deadline (480 s) are skipped and a cell past --cell-limit (60 s)
# is stopped (benchmarks/gpu.py says what it measures), in this order: RAM trained on
# MNIST 28 x 28 for 240 s with its test error every 24 s (time to 1.5%), learners' steps/s
# on cogrl tasks eager and with compile=True (CUDA graphs), environment throughput of every
# environment family at 1k-64k environments, RAM's training time per 60k MNIST episodes.
#
#   bash benchmarks/gpu.sh                   # on the GPU machine
#   bash benchmarks/gpu.sh --device cpu      # dry run here: small sizes, short cells
#   bash benchmarks/gpu.sh --out DIR --mnist DIR
#
# Results: DIR/gpu-<device>.json (every cell, written as it is measured), .log and .md (the
# section; `python benchmarks/gpu.py report FILE --write` puts it into BENCHMARKS.md).
# DIR defaults to $OUT (the device machine's result folder) or benchmarks/results/gpu.
# MNIST is read from --mnist, else ../shared/data/mnist, else .data/mnist (copy it there to
# carry it to a machine that lacks ../shared); without it RAM runs on scikit-learn's digits.
# Where gymnasium is missing (the GPU image) and .whl/ holds the wheels of
# ../shared/device/wheels.sh, they are installed first.
set -euo pipefail
cd "$(dirname "$0")/.."

device=cuda
out=${OUT:-benchmarks/results/gpu}
mnist=
while [ $# -gt 0 ]; do
    case $1 in
        --device) device=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --mnist) mnist=$2; shift 2 ;;
        *) echo "gpu.sh: unknown argument $1 (expected --device, --out, --mnist)" >&2; exit 2 ;;
    esac
done
case $device in
    cpu|cuda|cuda:*) ;;
    *) echo "gpu.sh: --device must be cpu, cuda or cuda:N, got $device" >&2; exit 2 ;;
esac
if [ -z "$mnist" ]; then
    for candidate in ../shared/data/mnist .data/mnist; do
        if [ -d "$candidate" ]; then mnist=$candidate; break; fi
    done
fi

if ! python3 -c "import gymnasium" 2>/dev/null; then
    if ! ls .whl/*.whl >/dev/null 2>&1; then
        echo "gpu.sh: gymnasium is missing and .whl/ holds no wheels (bash ../shared/device/wheels.sh)" >&2
        exit 1
    fi
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
mkdir -p "$out"
if command -v nvidia-smi >/dev/null; then nvidia-smi > "$out/nvidia-smi.txt" || true; fi

start=$(date +%s)
python3 benchmarks/gpu.py run --device "$device" --out "$out/gpu-$device.json" \
    ${mnist:+--mnist "$mnist"} 2>&1 | tee "$out/gpu-$device.log" | grep -v "^ " || true
python3 benchmarks/gpu.py report "$out/gpu-$device.json" \
    --command "bash benchmarks/gpu.sh --device $device" > "$out/gpu-$device.md"
echo "gpu.sh: $(( $(date +%s) - start )) s; results in $out/gpu-$device.{json,log,md}"
