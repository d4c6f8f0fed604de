#!/usr/bin/env bash
# One prepared GPU session for issue 17, in one command, about 6-8 minutes on one A100/H100-class GPU:
#
#   bash benchmarks/gpu_checks.sh [OUT_DIR]          # default OUT_DIR: gpu_checks
#
# Every number goes to OUT_DIR/results.txt (with the device name and the date); the JSON files beside
# it are what `gsgm plot timing` and BENCHMARKS.md take:
#   1. the device (nvidia-smi, what TensorFlow sees);
#   2. Table V (benchmarks/bench_table5.py): paper and released sizes, 30 and 150 particles, 512 / 8 / 1
#      steps, batch 10,000, float32 and bfloat16 (512 steps extrapolated from 1..64 measured steps, to
#      fit the time; the JSON marks them "measured": false);
#   3. float32 vs bfloat16 vs XLA (benchmarks/bench_precision.py) for sampling and the training step at
#      the paper's size, 30 and 150 particles: the training step time per jet with and without XLA and
#      mixed precision;
#   4. a short paper-size training through `gsgm train` (1 epoch on the built-in jets: the tf.data
#      pipeline and the loop, not only the step);
#   5. `horovodrun -np 1` of the same training, if Horovod is built (scripts/install_horovod.sh; with
#      NCCL: HOROVOD_GPU_OPERATIONS=NCCL before building).
# Each step has its own time limit (STEP_TIMEOUT seconds, default 240) and a failed step is recorded and
# does not stop the others. Needs TensorFlow with CUDA (pip install -e '.[gpu]').
set -uo pipefail

OUT=${1:-gpu_checks}
PY=${PYTHON:-python}
STEP_TIMEOUT=${STEP_TIMEOUT:-240}
# Smaller values make a CPU smoke run of the same script: BATCH=8 MEASURED_STEPS=2 TRAIN_JETS=20.
BATCH=${BATCH:-10000}
MEASURED_STEPS=${MEASURED_STEPS:-64}
TRAIN_JETS=${TRAIN_JETS:-2000}
HERE=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" TF_CPP_MIN_LOG_LEVEL=2
mkdir -p "$OUT"
RESULTS="$OUT/results.txt"
: >"$RESULTS"

step() {  # step NAME COMMAND...: run with a time limit, append its output and exit status to RESULTS
    local name=$1
    shift
    echo "== $name ($(date -u +%FT%TZ))" | tee -a "$RESULTS"
    timeout "$STEP_TIMEOUT" "$@" 2>"$OUT/$name.stderr" | tee -a "$RESULTS"
    local status=${PIPESTATUS[0]}
    echo "== $name: exit status $status" | tee -a "$RESULTS"
}

cd "$HERE" || exit 1
step device bash -c "nvidia-smi -L; git rev-parse HEAD; $PY -c 'import tensorflow as tf; \
print(tf.__version__, tf.config.list_physical_devices(\"GPU\"))'"
step table5 "$PY" benchmarks/bench_table5.py --batch "$BATCH" --variants float32,bfloat16 \
    --max-measured-steps "$MEASURED_STEPS" --steps 512,64,8,1 --repeats 2 --json "$OUT/table5.json"
step precision "$PY" benchmarks/bench_precision.py --config configs/fpcd_jetnet30.json --particles 30,150 \
    --batch "$BATCH" --steps 8 --train-batch 1024 --rounds 3 --json "$OUT/precision.json"
step train "$PY" -m gsgm.cli train --config configs/fpcd_jetnet30.json --data builtin --particles 30 \
    --epochs 1 --max-jets-per-class "$TRAIN_JETS" --out "$OUT/train-paper" --verbose 2
if "$PY" -c "import horovod.tensorflow" 2>/dev/null; then
    step horovod "$(dirname "$(command -v "$PY")")/horovodrun" -np 1 -H localhost:1 "$PY" scripts/train.py \
        --horovod --config configs/fpcd_jetnet30.json --data builtin --particles 30 --epochs 1 \
        --max-jets-per-class "$TRAIN_JETS" --out "$OUT/train-horovod" --verbose 2
else
    echo "== horovod: not built (scripts/install_horovod.sh)" | tee -a "$RESULTS"
fi
echo "results in $RESULTS"
