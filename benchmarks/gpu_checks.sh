#!/usr/bin/env bash
# One prepared GPU session for issue 17, in one command that fits a 10-minute limit (at most 590 s of
# steps, each with its own time limit) on one A100/H100-class GPU:
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
#      NCCL: HOROVOD_GPU_OPERATIONS=NCCL before building);
#   6. the jet-image U-Nets (benchmarks/bench_images.py, paper size): 1-step consistency and 15-level PC
#      sampling in float32, bfloat16, XLA and both, the paper's Table VI counterpart.
# Each step has its own time limit (seconds: TABLE5_TIMEOUT 190, PRECISION_TIMEOUT 130, TRAIN_TIMEOUT 90
# for each training, IMAGES_TIMEOUT 60) and a failed or timed-out step is recorded (exit status 124) and does not stop the
# others. Needs TensorFlow with CUDA (pip install -e '.[gpu]').
set -uo pipefail

OUT=${1:-gpu_checks}
PY=${PYTHON:-python}
TABLE5_TIMEOUT=${TABLE5_TIMEOUT:-190}
PRECISION_TIMEOUT=${PRECISION_TIMEOUT:-130}
TRAIN_TIMEOUT=${TRAIN_TIMEOUT:-90}
IMAGES_TIMEOUT=${IMAGES_TIMEOUT:-60}
IMAGE_BATCH=${IMAGE_BATCH:-256}
# Smaller values make a CPU smoke run of the same script (done on the 2-core VM, 2026-12-02):
#   BATCH=4 MEASURED_STEPS=2 TRAIN_JETS=20 PRECISION_TIMEOUT=400 IMAGE_BATCH=2 bash benchmarks/gpu_checks.sh /tmp/smoke
BATCH=${BATCH:-10000}
MEASURED_STEPS=${MEASURED_STEPS:-64}
TRAIN_JETS=${TRAIN_JETS:-2000}
HERE=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" TF_CPP_MIN_LOG_LEVEL=2
mkdir -p "$OUT"
RESULTS="$OUT/results.txt"
: >"$RESULTS"

step() {  # step NAME SECONDS COMMAND...: run with a time limit, append its output and exit status
    local name=$1 limit=$2
    shift 2
    echo "== $name ($(date -u +%FT%TZ), limit ${limit} s)" | tee -a "$RESULTS"
    timeout "$limit" "$@" 2>"$OUT/$name.stderr" | tee -a "$RESULTS"
    local status=${PIPESTATUS[0]}
    echo "== $name: exit status $status" | tee -a "$RESULTS"
}

cd "$HERE" || exit 1
step device 30 bash -c "nvidia-smi -L; git rev-parse HEAD; $PY -c 'import tensorflow as tf; \
print(tf.__version__, tf.config.list_physical_devices(\"GPU\"))'"
step table5 "$TABLE5_TIMEOUT" "$PY" benchmarks/bench_table5.py --batch "$BATCH" --variants float32,bfloat16 \
    --max-measured-steps "$MEASURED_STEPS" --steps 512,64,8,1 --repeats 2 --json "$OUT/table5.json"
step precision "$PRECISION_TIMEOUT" "$PY" benchmarks/bench_precision.py --config configs/fpcd_jetnet30.json \
    --particles 30,150 --batch "$BATCH" --steps 8 --train-batch 1024 --rounds 2 --json "$OUT/precision.json"
step train "$TRAIN_TIMEOUT" "$PY" -m gsgm.cli train --config configs/fpcd_jetnet30.json --data builtin --particles 30 \
    --epochs 1 --max-jets-per-class "$TRAIN_JETS" --out "$OUT/train-paper" --verbose 2
if "$PY" -c "import horovod.tensorflow" 2>/dev/null; then
    step horovod "$TRAIN_TIMEOUT" "$(dirname "$(command -v "$PY")")/horovodrun" -np 1 -H localhost:1 "$PY" scripts/train.py \
        --horovod --config configs/fpcd_jetnet30.json --data builtin --particles 30 --epochs 1 \
        --max-jets-per-class "$TRAIN_JETS" --out "$OUT/train-horovod" --verbose 2
else
    echo "== horovod: not built (scripts/install_horovod.sh)" | tee -a "$RESULTS"
fi
step images "$IMAGES_TIMEOUT" "$PY" benchmarks/bench_images.py --batch "$IMAGE_BATCH" --repeats 2 \
    --modes consistency-1,score-pc-M0 --variants float32,bfloat16,xla,bfloat16-xla --json "$OUT/images.json"
echo "results in $RESULTS"
