#!/bin/bash
# The GPU checks, as one run of about 9 minutes on a CUDA machine (after bench/gpu_prepare.sh filled .gpu/ here):
#   1. tests/test_cuda.py (training and parsing on the GPU, no host synchronization in the UNN iterations) and
#      the structure, precision and engine tests;
#   2. bench/gpu_parser.py: the parser with a BERT-base-sized random encoder, K = 1, 2, 3, and SuPar beside it;
#   3. `unn mnist train`, batch 512, k = 3, fb: seconds per epoch (reference code: 1.46 s on an H200);
#   4. `unn seqcomplete` on the full data, k = 1, fb: test accuracy against seconds of training (reference code:
#      98.85% after 16,000 updates, 19.3 s per 1000 updates on an H200), with the linear-decay recipe (3,000 updates
#      from 2e-3) and, for the seconds per 1000 updates, the paper's constant 1e-4.
# Logs, the benchmark's JSON and its BENCHMARKS.md section go to $OUT (default gpu-out/). Each step has its own
# time limit, so that one slow step cannot take the others' time. QUICK=1 DEVICE=cpu runs the same steps in miniature
# (a 2-layer encoder, a few batches, seconds of training) to check the script on a CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
export PYTHONUNBUFFERED=1
if [ "${QUICK:-0}" = 1 ]; then
    PARSER_ARGS=(--tiny --batches 3 --passes 1 --k 1 3 --no-write) SEQ_ARGS=(--vocab 16 --max-length 10)
    MNIST_ARGS=(--epochs 1 --train-limit 2000 --dev-size 1000)
    SEQ_UPDATES=100 SEQ_EVAL=50
else
    PARSER_ARGS=(--batches 30 --passes 2) MNIST_ARGS=(--epochs 4) SEQ_ARGS=() SEQ_UPDATES=3000 SEQ_EVAL=500
fi
if ls .gpu/whl/*.whl > /dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl \
        || exit 1
    export PYTHONPATH=$PWD:/tmp/site
else
    export PYTHONPATH=$PWD
fi
if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
fi
$PY -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' \
    | tee -a "$OUT/gpu.txt"

step() {  # name seconds command...
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    echo "$name: exit $? after $((SECONDS - t0)) s" | tee -a "$OUT/steps.txt"
    tail -n 3 "$OUT/$name.log"
}

step cuda-tests 75 $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_structures.py \
    tests/test_precision.py tests/test_engine.py
step gpu-parser 180 $PY bench/gpu_parser.py --device "$DEVICE" --tokenizer .gpu/tokenizer \
    --train .gpu/data/en_partut-ud-train.conllu --test .gpu/data/en_partut-ud-test.conllu --supar \
    --json "$OUT/gpu_parser.json" "${PARSER_ARGS[@]}"
sed -n '/bench:gpu-parser:start/,/bench:gpu-parser:end/p' BENCHMARKS.md > "$OUT/gpu_parser.md"
step mnist 60 $PY -m unnparse.cli.unn_app mnist train --data-dir .gpu/data/mnist --no-download --device "$DEVICE" \
    "${MNIST_ARGS[@]}" --batch-size 512 --unn-iter 3 --gamma 0.1 --order fb --output /tmp/mnist-k3 --no-progress
step seq-generate 45 $PY -m unnparse.cli.unn_app seqcomplete generate --output /tmp/seq.npz "${SEQ_ARGS[@]}"
step seqcomplete 120 $PY -m unnparse.cli.unn_app seqcomplete train --data /tmp/seq.npz --unn-iter 1 --order fb \
    --device "$DEVICE" --epochs 100 --lr 2e-3 --lr-schedule linear --max-updates "$SEQ_UPDATES" \
    --eval-every "$SEQ_EVAL" --output /tmp/seq-k1 --no-progress
step seq-paper-lr 70 $PY -m unnparse.cli.unn_app seqcomplete train --data /tmp/seq.npz --unn-iter 1 --order fb \
    --device "$DEVICE" --epochs 100 --max-updates "$((SEQ_UPDATES / 2))" --eval-every "$SEQ_EVAL" \
    --output /tmp/seq-k1-paper --no-progress
cat "$OUT/steps.txt"
