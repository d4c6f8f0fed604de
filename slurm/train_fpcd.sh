#!/bin/bash
# Train FPCD data-parallel with Horovod: one rank per GPU, as in the paper (4 Perlmutter nodes x 4
# A100 = 16 GPUs, 128 jets per GPU and step, learning rate scaled by the number of ranks).
#
#   sbatch slurm/train_fpcd.sh                               # from the gsgm checkout
#   CONFIG=configs/fpcd_jetnet150.json RUN_NAME=fpcd-jetnet150 sbatch --nodes=2 slurm/train_fpcd.sh
#   DRY_RUN=1 bash slurm/train_fpcd.sh                       # print the srun command, run nothing
#
# Requeue-safe: a job stopped at its time limit (USR1 five minutes before it requeues the job) or
# requeued after a node failure starts again with --resume and continues from the run's last
# complete checkpoint (at most one epoch is repeated). A run that finished does nothing more.
#
# Knobs (environment variables; defaults in brackets), besides those in slurm/common.sh:
#   CONFIG      config for a new run [configs/fpcd_jetnet30.json]; a resumed run uses its own
#   PARTICLES   --particles 30|150, checked against the config [unset: no check]
#   EPOCHS      --epochs override for a new run [unset: the config's training.epochs]
#   NODES [4], GPUS_PER_NODE [4], RUN_NAME [fpcd-jetnet30]: see slurm/common.sh
#
# Site-specific #SBATCH lines: --account (or `sbatch -A`), --constraint, --qos.
#SBATCH --job-name=fpcd-train
#SBATCH --account=m0000
#SBATCH --constraint=gpu
#SBATCH --qos=regular
#SBATCH --time=12:00:00
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=4
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
NODES="${NODES:-${SLURM_JOB_NUM_NODES:-4}}"
GPUS_PER_NODE="${GPUS_PER_NODE:-${SLURM_NTASKS_PER_NODE:-4}}"
CONFIG="${CONFIG:-configs/fpcd_jetnet30.json}"
PARTICLES="${PARTICLES:-}"
EPOCHS="${EPOCHS:-}"

gsgm_site_env

args=(python scripts/train.py --horovod --data "$DATA" --out "$RUN_DIR" --verbose 2)
if [[ -f "$RUN_DIR/config.json" ]]; then
    gsgm_log "$RUN_DIR holds a run: resuming from its last checkpoint"
    args+=(--resume)
else
    gsgm_log "new run $RUN_DIR from $CONFIG"
    args+=(--config "$CONFIG")
    if [[ -n "$EPOCHS" ]]; then args+=(--epochs "$EPOCHS"); fi
fi
if [[ -n "$PARTICLES" ]]; then args+=(--particles "$PARTICLES"); fi

gsgm_srun_prefix "train-$RUN_NAME"
gsgm_run "${GSGM_SRUN[@]}" "${args[@]}" "${GSGM_EXTRA[@]}"
