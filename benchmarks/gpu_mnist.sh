#!/usr/bin/env bash
# Issue 21's MNIST call on a lent GPU (one 10-minute call): RAM on MNIST 28 x 28 trained to
# its plateau at three sizes and DRAM on MNIST pairs and addition, five trainings sharing
# the GPU at once (each is bound by kernel launches, not by the GPU: their wall times are
# upper bounds of a training alone), then the learners alone at the issue's goal sizes.
#
#   bash benchmarks/gpu_mnist.sh [DEVICE SECONDS BUDGET_SCALE LIMIT1 LIMIT2]
#   bash benchmarks/gpu_mnist.sh cpu 10 0.02 200 200      # dry run here
#
# DEVICE (cuda); SECONDS of RAM training (225); BUDGET_SCALE of DRAM's 600 s cells (0.375:
# 225 s); LIMIT1, LIMIT2: seconds the trainings and the learners may take (310, 240).
# MNIST's IDX files from $MNIST (default .data/mnist: copy ../shared/data/mnist there to
# carry it). Results: one archive, $OUT/results.tgz (or /tmp/results.tgz), of /tmp/r.
set -u
cd "$(dirname "$0")/.."
dev=${1:-cuda}; secs=${2:-225}; scale=${3:-0.375}; t1=${4:-310}; t2=${5:-240}
mnist=${MNIST:-.data/mnist}
if ! python3 -c "import gymnasium" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
R=/tmp/r; rm -rf $R; mkdir -p $R
nvidia-smi > $R/nvidia-smi.txt 2>&1
G="timeout $t1 python3 benchmarks/gpu.py run --device $dev --mnist $mnist --parts plateau"
G="$G --plateau-mode eager --plateau-seconds $secs"
W='"policy":{"core_size":256,"hidden_sizes":[256]}'
$G --plateau-envs 1024 --out $R/p1024.json > $R/p1024.log 2>&1 &
$G --plateau-envs 4096 --plateau-hyper "{\"learning_rate\":0.002,$W}" \
    --out $R/p4096w.json > $R/p4096w.log 2>&1 &
$G --plateau-envs 16384 --plateau-hyper "{\"learning_rate\":0.003,$W}" \
    --out $R/p16384w.json > $R/p16384w.log 2>&1 &
A="timeout $t1 python3 benchmarks/attention.py run --full --root $mnist --device $dev"
A="$A --anneal --slices 6 --budget-scale $scale --results $R/att"
D='{"num_envs":1024,"learning_rate":0.002}'
$A --table dram --cells pairs/dram:3 --hyper "$D" > $R/pairs.log 2>&1 &
$A --table addition --cells addition/dram:3 --hyper "$D" > $R/addition.log 2>&1 &
wait
timeout $t2 python3 benchmarks/gpu.py run --device $dev --mnist $mnist --parts learner \
    --goal-sizes-only --deadline $((t2 - 100)) --cell-limit 90 --out $R/learners.json \
    > $R/learners.log 2>&1
tar czf ${OUT:-/tmp}/results.tgz -C /tmp r
tail -n 5 $R/*.log
