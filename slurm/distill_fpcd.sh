#!/bin/bash
# Progressive distillation of a trained FPCD run, down to UNTIL sampling steps, in one job:
#     scripts/distill.py --run RUN_DIR --until UNTIL [--epochs-per-stage E]
#
#   RUN_NAME=fpcd-jetnet30 sbatch slurm/distill_fpcd.sh
#   DRY_RUN=1 RUN_NAME=fpcd-jetnet30 bash slurm/distill_fpcd.sh
#
# Requeue-safe: scripts/distill.py resumes an interrupted chain at the stage and epoch where it
# stopped, so the requeued job runs the same command again.
#
# Knobs (environment variables; defaults in brackets), besides those in slurm/common.sh:
#   UNTIL             distil until this many sampling steps [1]
#   EPOCHS_PER_STAGE  --epochs-per-stage [unset: the script's default]
#   NODES [1], GPUS_PER_NODE [1]: one rank by default. With several, scripts/distill.py must run
#       under Horovod (gsgm.training.distributed; fit_epochs refuses a multi-rank launch without it).
#   RUN_NAME / RUN_DIR: the trained run to distil (see slurm/common.sh)
#SBATCH --job-name=fpcd-distill
# Account: sbatch takes it from $SBATCH_ACCOUNT (export SBATCH_ACCOUNT=m1234), from `sbatch -A m1234`,
# or from this SITE line once uncommented (##SBATCH is not a directive):
##SBATCH --account=YOUR_ACCOUNT
#SBATCH --constraint=gpu
#SBATCH --qos=regular
#SBATCH --time=12:00:00
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-task=1
#SBATCH --cpus-per-task=32
#SBATCH --requeue
#SBATCH --signal=B:USR1@300
#SBATCH --open-mode=append
#SBATCH --output=slurm-%x-%j.out
set -euo pipefail

# shellcheck source=slurm/common.sh
source "${GSGM_DIR:-${SLURM_SUBMIT_DIR:-$PWD}}/slurm/common.sh"
gsgm_init
NODES="${NODES:-${SLURM_JOB_NUM_NODES:-1}}"
GPUS_PER_NODE="${GPUS_PER_NODE:-${SLURM_NTASKS_PER_NODE:-1}}"
UNTIL="${UNTIL:-1}"
EPOCHS_PER_STAGE="${EPOCHS_PER_STAGE:-}"

gsgm_site_env

if [[ "$DRY_RUN" != 1 && ! -f "$RUN_DIR/config.json" ]]; then
    gsgm_log "error: $RUN_DIR is not a trained run; train it first (slurm/train_fpcd.sh)"
    exit 2
fi
args=(python scripts/distill.py --run "$RUN_DIR" --until "$UNTIL")
if [[ -n "$EPOCHS_PER_STAGE" ]]; then args+=(--epochs-per-stage "$EPOCHS_PER_STAGE"); fi

gsgm_srun_prefix "distill-$RUN_NAME"
gsgm_run "${GSGM_SRUN[@]}" "${args[@]}" "${GSGM_EXTRA[@]}"
