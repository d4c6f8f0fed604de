#!/bin/bash
# Generate jets from a trained (or distilled) FPCD run with scripts/sample.py on one GPU; the
# output is JetNet-format files, one per class, in OUT.
#
#   RUN_NAME=fpcd-jetnet30 STEPS=8 sbatch slurm/sample_fpcd.sh
#   DRY_RUN=1 RUN_NAME=fpcd-jetnet30 bash slurm/sample_fpcd.sh
#
# Requeue-safe: sampling is repeated from the start (its files are written atomically).
#
# Knobs (environment variables; defaults in brackets), besides those in slurm/common.sh:
#   JETS_PER_CLASS  jets to generate per class [100000]
#   STEPS           DDIM steps, e.g. 512, 8 or 1 for a distilled stage [unset: the config's]
#   SEED            sampling seed [0]
#   BATCH_SIZE      jets per generation batch [10000]
#   OUT             output directory [$RUN_DIR/samples-steps$STEPS, or $RUN_DIR/samples]
#   Sampling runs as one process (NODES and GPUS_PER_NODE are fixed to 1).
#SBATCH --job-name=fpcd-sample
# Account: sbatch takes it from $SBATCH_ACCOUNT (export SBATCH_ACCOUNT=m1234), from `sbatch -A m1234`,
# or from this SITE line once uncommented (##SBATCH is not a directive):
##SBATCH --account=YOUR_ACCOUNT
#SBATCH --constraint=gpu
#SBATCH --qos=regular
#SBATCH --time=02:00:00
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-task=1
#SBATCH --cpus-per-task=32
#SBATCH --requeue
#SBATCH --signal=B:USR1@120
#SBATCH --open-mode=append
#SBATCH --output=slurm-%x-%j.out
set -euo pipefail

# shellcheck source=slurm/common.sh
source "${GSGM_DIR:-${SLURM_SUBMIT_DIR:-$PWD}}/slurm/common.sh"
gsgm_init
NODES=1
GPUS_PER_NODE=1
JETS_PER_CLASS="${JETS_PER_CLASS:-100000}"
STEPS="${STEPS:-}"
SEED="${SEED:-0}"
BATCH_SIZE="${BATCH_SIZE:-10000}"
OUT="${OUT:-$RUN_DIR/samples${STEPS:+-steps$STEPS}}"

gsgm_site_env

args=(python scripts/sample.py --run "$RUN_DIR" --jets-per-class "$JETS_PER_CLASS" --seed "$SEED"
    --batch-size "$BATCH_SIZE" --out "$OUT" --no-progress)
if [[ -n "$STEPS" ]]; then args+=(--steps "$STEPS"); fi

gsgm_srun_prefix "sample-$RUN_NAME"
gsgm_run "${GSGM_SRUN[@]}" "${args[@]}" "${GSGM_EXTRA[@]}"
