# shellcheck shell=bash
# Shared by the gsgm Slurm templates (slurm/*_fpcd.sh); sourced, never submitted itself.
#
# To adapt the templates to another site, set the account (export SBATCH_ACCOUNT=..., or the marked
# ##SBATCH --account SITE line of each template), edit the #SBATCH constraint/qos/GPU lines and the
# SITE ENVIRONMENT block below; everything else is read from
# environment variables with defaults, e.g.
#     RUN_NAME=jetnet30 CONFIG=configs/fpcd_jetnet30.json sbatch slurm/train_fpcd.sh
# (sbatch passes the submitting shell's environment to the job). DRY_RUN=1 bash slurm/X.sh prints
# the commands instead of running them, without Slurm.
#
# Knobs common to all templates (defaults in brackets):
#   GSGM_DIR       the gsgm checkout [the directory sbatch was called from: $SLURM_SUBMIT_DIR, else .]
#   GSGM_VENV      Python environment to activate [$GSGM_DIR/.venv]; empty: do not activate any
#   MODULES        modules to load [cudatoolkit cray-mpich] (the ones Horovod was built with)
#   SCRATCH_ROOT   where data, runs and logs live [$SCRATCH/gsgm, else $HOME/gsgm-scratch/gsgm]
#   DATA           JetNet files (scripts/train.py --data) [$SCRATCH_ROOT/data/jetnet]
#   RUNS_ROOT      run directories [$SCRATCH_ROOT/runs]
#   RUN_NAME       name of the run directory [fpcd-jetnet30]
#   RUN_DIR        the run directory [$RUNS_ROOT/$RUN_NAME]
#   LOG_DIR        per-job logs of all ranks [$SCRATCH_ROOT/logs]
#   NODES          nodes of the job step [$SLURM_JOB_NUM_NODES, else the template's default]
#   GPUS_PER_NODE  one rank per GPU [$SLURM_NTASKS_PER_NODE, else the template's default]
#   CPUS_PER_TASK  CPU cores per rank (data pipeline threads) [$SLURM_CPUS_PER_TASK, else 32]
#   GPUS_PER_TASK  GPUs per rank [$SLURM_GPUS_PER_TASK, else 1]; 0: a CPU-only job step (no
#                  --gpus-per-task/--gpu-bind), e.g. `sbatch --constraint= --gpus-per-task=0 ...`
#   GPU_BIND       srun --gpu-bind [none: every rank sees the node's GPUs and Horovod pins GPU
#                  local_rank, which keeps NCCL's peer-to-peer paths between them]
#   SLURM_MPI_TYPE read by srun itself: how it starts MPI ranks (pmix, pmi2, cray_shasta) [the
#                  site's MpiDefault]; Horovod built with MPI takes its rank from it
#   REQUEUE        1: requeue the job when Slurm signals the time limit (USR1, see #SBATCH --signal)
#                  and resume from the last checkpoint [1]
#   EXTRA_ARGS     appended to the Python command line []
#   DRY_RUN        1: print the commands, run nothing [0]

gsgm_log() { printf '[gsgm %s] %s\n' "$(date '+%F %T')" "$*" >&2; }

# Fill in the common knobs and go to the checkout. Call first.
gsgm_init() {
    GSGM_DIR="${GSGM_DIR:-${SLURM_SUBMIT_DIR:-$PWD}}"
    if [[ ! -f "$GSGM_DIR/scripts/train.py" ]]; then
        gsgm_log "error: $GSGM_DIR is not a gsgm checkout (no scripts/train.py);" \
            "submit from the checkout or set GSGM_DIR"
        exit 2
    fi
    cd "$GSGM_DIR" || exit 2
    GSGM_VENV="${GSGM_VENV-$GSGM_DIR/.venv}"
    MODULES="${MODULES-cudatoolkit cray-mpich}"
    SCRATCH_ROOT="${SCRATCH_ROOT:-${SCRATCH:-$HOME/gsgm-scratch}/gsgm}"
    DATA="${DATA:-$SCRATCH_ROOT/data/jetnet}"
    RUNS_ROOT="${RUNS_ROOT:-$SCRATCH_ROOT/runs}"
    RUN_NAME="${RUN_NAME:-fpcd-jetnet30}"
    RUN_DIR="${RUN_DIR:-$RUNS_ROOT/$RUN_NAME}"
    LOG_DIR="${LOG_DIR:-$SCRATCH_ROOT/logs}"
    CPUS_PER_TASK="${CPUS_PER_TASK:-${SLURM_CPUS_PER_TASK:-32}}"
    GPUS_PER_TASK="${GPUS_PER_TASK:-${SLURM_GPUS_PER_TASK:-1}}"
    if [[ ! "$GPUS_PER_TASK" =~ ^[0-9]+$ ]]; then
        gsgm_log "error: GPUS_PER_TASK must be a whole number, got '$GPUS_PER_TASK'"
        exit 2
    fi
    GPU_BIND="${GPU_BIND:-none}"
    REQUEUE="${REQUEUE:-1}"
    EXTRA_ARGS="${EXTRA_ARGS:-}"
    DRY_RUN="${DRY_RUN:-0}"
    # word-split EXTRA_ARGS like a shell would (no globbing); quote arguments with spaces in it.
    # shellcheck disable=SC2034  # used by the templates
    read -r -a GSGM_EXTRA <<<"$EXTRA_ARGS"
    if [[ "$DRY_RUN" == 1 ]]; then gsgm_show_submission; fi
}

# DRY_RUN: what sbatch would submit: the template's #SBATCH directives and the account it would use.
gsgm_show_submission() {
    local template="${BASH_SOURCE[-1]}"
    gsgm_log "DRY_RUN: sbatch $template would submit with account" \
        "${SBATCH_ACCOUNT:-<none given: SBATCH_ACCOUNT unset, the site default>} and:"
    grep '^#SBATCH' "$template" >&2 || true
}

# Print the named environment variables the job step gets (DRY_RUN) or log them (a real job).
gsgm_show_env() {
    local name line=""
    for name in "$@"; do
        if [[ -n "${!name:-}" ]]; then line+=" $name=$(printf '%q' "${!name}")"; fi
    done
    if [[ "$DRY_RUN" == 1 ]]; then
        printf 'DRY_RUN env:%s\n' "$line"
    else
        gsgm_log "environment:$line"
    fi
}

# ===================================== SITE ENVIRONMENT =======================================
# Edit this block for your cluster. Perlmutter: the CUDA toolkit and Cray MPICH that Horovod was
# built against (HOROVOD_BUILD=gpu scripts/install_horovod.sh, see README "Distributed training"),
# then the project's Python environment. Run under a real Slurm (one CPU node, Slurm 22.05, Horovod
# with Open MPI through srun's PMIx) by tests/test_slurm_real.py; the GPU, NCCL and module lines are
# not verified there (README, "Slurm on this machine").
gsgm_site_env() {
    if [[ "$DRY_RUN" == 1 ]]; then
        gsgm_log "DRY_RUN: would load modules [$MODULES] and activate [$GSGM_VENV]"
        return 0
    fi
    if [[ -n "$MODULES" ]] && command -v module >/dev/null 2>&1; then
        local -a modules
        read -r -a modules <<<"$MODULES"
        module load "${modules[@]}"
    fi
    if [[ -n "$GSGM_VENV" ]]; then
        # shellcheck disable=SC1091  # the environment is created by `make install`
        source "$GSGM_VENV/bin/activate"
    fi
    export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
    export PYTHONUNBUFFERED=1
    # Threads of TensorFlow's CPU side (input pipeline) per rank.
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$CPUS_PER_TASK}"
}
# ==============================================================================================

# srun prefix for NODES x GPUS_PER_NODE ranks, GPUS_PER_TASK GPUs each (none: CPU ranks); output
# of all ranks in one labelled log.
gsgm_srun_prefix() {
    local name="$1" gpus=()
    if ((GPUS_PER_TASK > 0)); then gpus=(--gpus-per-task="$GPUS_PER_TASK" --gpu-bind="$GPU_BIND"); fi
    # shellcheck disable=SC2034  # used by the templates
    GSGM_SRUN=(
        srun
        --nodes="$NODES"
        --ntasks-per-node="$GPUS_PER_NODE"
        "${gpus[@]}"
        --cpus-per-task="$CPUS_PER_TASK"
        --kill-on-bad-exit=1
        --label
        --output="$LOG_DIR/$name-%j.%s.out"
    )
}

gsgm_requeue() {
    gsgm_log "time limit near: requeueing job ${SLURM_JOB_ID:-?}; it resumes from its last checkpoint"
    scontrol requeue "${SLURM_JOB_ID:?}"
}

# Run "$@" (or print it with DRY_RUN=1). With REQUEUE=1 inside a Slurm job, USR1 (sent by
# `#SBATCH --signal=B:USR1@...` before the time limit) requeues the job; Slurm then stops this run,
# and the requeued job starts the template again, which resumes from the run's last checkpoint.
gsgm_run() {
    if [[ "$DRY_RUN" == 1 ]]; then
        printf 'DRY_RUN:'
        printf ' %q' "$@"
        printf '\n'
        return 0
    fi
    mkdir -p "$LOG_DIR"
    gsgm_log "running: $*"
    if [[ "$REQUEUE" == 1 && -n "${SLURM_JOB_ID:-}" ]]; then
        trap gsgm_requeue USR1
    fi
    "$@" &
    local pid=$! status=0
    # `wait` returns early (status > 128) when a trapped signal arrives; keep waiting for the step.
    while true; do
        status=0
        wait "$pid" || status=$?
        if ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
    done
    gsgm_log "finished with status $status"
    return "$status"
}
