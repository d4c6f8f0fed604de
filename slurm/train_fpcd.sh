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
# The job runs `python scripts/train.py` with its defaults ($GSGM_DATA, $GSGM_RUN_DIR, $GSGM_CONFIG
# set from DATA, RUN_DIR, CONFIG), exactly what a user types by hand.
#
# Knobs (environment variables; defaults in brackets), besides those in slurm/common.sh:
#   CONFIG      config for a new run [scripts/train.py's default: configs/fpcd_jetnet30.json];
#               a resumed run uses its own (a CONFIG given then must be the run's own)
#   PARTICLES   --particles 30|150, checked against the config [unset: no check]
#   EPOCHS      --epochs override for a new run [unset: the config's training.epochs]
#   NODES [4], GPUS_PER_NODE [4], RUN_NAME [fpcd-jetnet30]: see slurm/common.sh
#
# Site-specific #SBATCH lines: --constraint, --qos (and the account, below).
#SBATCH --job-name=fpcd-train
# Account: sbatch takes it from $SBATCH_ACCOUNT (export SBATCH_ACCOUNT=m1234), from `sbatch -A m1234`,
# or from this SITE line once uncommented (##SBATCH is not a directive):
##SBATCH --account=YOUR_ACCOUNT
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
CONFIG="${CONFIG:-}"
PARTICLES="${PARTICLES:-}"
EPOCHS="${EPOCHS:-}"

gsgm_site_env

# scripts/train.py's own defaults, pointed at this job's data and run directory: it starts the run,
# or resumes it from its last checkpoint when RUN_DIR already holds one (a requeued job).
export GSGM_DATA="$DATA" GSGM_RUN_DIR="$RUN_DIR"
if [[ -n "${CONFIG:-}" ]]; then export GSGM_CONFIG="$CONFIG"; fi
if [[ -f "$RUN_DIR/config.json" ]]; then
    gsgm_log "$RUN_DIR holds a run: resuming from its last checkpoint"
else
    gsgm_log "new run $RUN_DIR from ${CONFIG:-the default config (configs/fpcd_jetnet30.json)}"
fi
gsgm_show_env GSGM_DATA GSGM_RUN_DIR GSGM_CONFIG

args=(python scripts/train.py --horovod --verbose 2)
if [[ -n "$EPOCHS" ]]; then args+=(--epochs "$EPOCHS"); fi
if [[ -n "$PARTICLES" ]]; then args+=(--particles "$PARTICLES"); fi

gsgm_srun_prefix "train-$RUN_NAME"
gsgm_run "${GSGM_SRUN[@]}" "${args[@]}" "${GSGM_EXTRA[@]}"
