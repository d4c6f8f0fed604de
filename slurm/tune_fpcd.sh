#!/bin/bash
# KerasTuner Hyperband search over FPCD's architecture and learning rate (scripts/tune.py), each
# trial trained data-parallel on all ranks of the job; rank 0 owns the tuner and its directory.
# The best trial is exported as a config that slurm/train_fpcd.sh (CONFIG=...) accepts unchanged.
#
#   sbatch slurm/tune_fpcd.sh
#   DRY_RUN=1 bash slurm/tune_fpcd.sh
#
# Requeue-safe: the tuner directory keeps every finished trial; the requeued job continues the
# search (an interrupted trial is run again).
#
# Knobs (environment variables; defaults in brackets), besides those in slurm/common.sh:
#   CONFIG        base config; the search overrides its architecture and learning rate
#                 [configs/fpcd_jetnet30.json]
#   TUNE_NAME     name of the search [tune-$(basename CONFIG .json)]
#   TUNER_DIR     KerasTuner's directory [$SCRATCH_ROOT/tuning/$TUNE_NAME]
#   EXPORT        the best config, written when the search ends [$TUNER_DIR/best.json]
#   MAX_EPOCHS    Hyperband max_epochs [50]
#   FACTOR        Hyperband reduction factor [3]
#   ITERATIONS    Hyperband iterations [1]
#   SPACE         JSON file with the search space [unset: gsgm.training.tuning.DEFAULT_SPACE]
#   MAX_JETS_PER_CLASS  use only this many training jets per class [unset: all]
#   NODES [1], GPUS_PER_NODE [4]: ranks that train each trial together
#SBATCH --job-name=fpcd-tune
# Account: sbatch takes it from $SBATCH_ACCOUNT (export SBATCH_ACCOUNT=m1234), from `sbatch -A m1234`,
# or from this SITE line once uncommented (##SBATCH is not a directive):
##SBATCH --account=YOUR_ACCOUNT
#SBATCH --constraint=gpu
#SBATCH --qos=regular
#SBATCH --time=24:00:00
#SBATCH --nodes=1
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
NODES="${NODES:-${SLURM_JOB_NUM_NODES:-1}}"
GPUS_PER_NODE="${GPUS_PER_NODE:-${SLURM_NTASKS_PER_NODE:-4}}"
CONFIG="${CONFIG:-configs/fpcd_jetnet30.json}"
TUNE_NAME="${TUNE_NAME:-tune-$(basename "$CONFIG" .json)}"
TUNER_DIR="${TUNER_DIR:-$SCRATCH_ROOT/tuning/$TUNE_NAME}"
EXPORT="${EXPORT:-$TUNER_DIR/best.json}"
MAX_EPOCHS="${MAX_EPOCHS:-50}"
FACTOR="${FACTOR:-3}"
ITERATIONS="${ITERATIONS:-1}"
SPACE="${SPACE:-}"
MAX_JETS_PER_CLASS="${MAX_JETS_PER_CLASS:-}"

gsgm_site_env

args=(python scripts/tune.py --horovod --config "$CONFIG" --data "$DATA" --tuner-dir "$TUNER_DIR"
    --max-epochs "$MAX_EPOCHS" --factor "$FACTOR" --hyperband-iterations "$ITERATIONS" --export "$EXPORT")
if [[ -n "$SPACE" ]]; then args+=(--space "$SPACE"); fi
if [[ -n "$MAX_JETS_PER_CLASS" ]]; then args+=(--max-jets-per-class "$MAX_JETS_PER_CLASS"); fi

gsgm_srun_prefix "$TUNE_NAME"
gsgm_run "${GSGM_SRUN[@]}" "${args[@]}" "${GSGM_EXTRA[@]}"
