#!/usr/bin/env bash
# Build and install Horovod 0.28.1 against the TensorFlow already installed in the environment.
#
# Horovod's last release (June 2023) predates TF 2.17's move of the XLA headers and Keras 3; a plain
# `pip install horovod` fails (the isolated build sees no TensorFlow, then xla_mpi_ops.cc misses
# highwayhash and the moved XLA headers). This script applies the recipe that works (also summarised
# in the README, "Installation"):
#   * --no-build-isolation, so that the build sees the installed TensorFlow;
#   * CXXFLAGS with TensorFlow's bundled highwayhash and farmhash include directories;
#   * a directory of one-line forwarding headers at the pre-2.17 paths tensorflow/compiler/xla/...
#     that include the headers at their TF 2.21 places under xla/..., searched first.
# Only the low-level `horovod.tensorflow` API works under Keras 3 (gsgm.training.distributed uses it);
# `horovod.tensorflow.keras` is broken there.
#
# Usage:
#   scripts/install_horovod.sh                     # CPU build (gloo, no MPI): laptops, CI
#   HOROVOD_BUILD=mpi scripts/install_horovod.sh   # CPU build with MPI + gloo: `srun` starts the ranks
#   HOROVOD_BUILD=gpu scripts/install_horovod.sh   # GPU cluster build (NCCL allreduce, MPI + gloo)
#
# Environment (defaults in brackets):
#   PYTHON               interpreter whose environment receives Horovod [.venv/bin/python if present,
#                        else python3]; TensorFlow must already be installed there
#   HOROVOD_VERSION      [0.28.1] (the recipe is only verified for this version)
#   HOROVOD_BUILD        cpu | mpi | gpu [cpu]
#       cpu: HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1, CPU collectives only.
#       mpi: HOROVOD_WITH_MPI=1 HOROVOD_WITH_GLOO=1, CPU collectives; needs an MPI compiler wrapper
#            (`mpicc`; Debian: apt-get install libopenmpi-dev openmpi-bin). Ranks then start under
#            `srun --mpi=pmix` (Slurm's PMIx plugin; Open MPI reads its rank from it) as well as under
#            `horovodrun`. Tested with Debian 12's Open MPI 4.1.4 and Slurm 22.05 (tests/test_slurm_real.py).
#       gpu: HOROVOD_GPU_OPERATIONS=NCCL (allreduce/allgather/broadcast of GPU tensors through NCCL),
#            HOROVOD_WITH_MPI=1 (so that `srun` can launch ranks through PMI, as on Perlmutter) and
#            HOROVOD_WITH_GLOO=1 (so that `horovodrun --gloo` also works). Needs nvcc/CUDA
#            (HOROVOD_CUDA_HOME, default /usr/local/cuda), NCCL (HOROVOD_NCCL_HOME, or
#            HOROVOD_NCCL_INCLUDE + HOROVOD_NCCL_LIB; HOROVOD_NCCL_LINK=SHARED for a shared libnccl)
#            and an MPI compiler wrapper on PATH (`mpicc`; on Cray systems e.g. MPICC=cc, CC=cc,
#            CXX=CC after `module load PrgEnv-gnu cudatoolkit cray-mpich`).
#   Any HOROVOD_* build variable you set yourself (HOROVOD_GPU_OPERATIONS, HOROVOD_WITHOUT_MPI,
#   HOROVOD_GPU_ALLREDUCE, HOROVOD_CPU_OPERATIONS, ...) is kept as given.
#   HOROVOD_TARGET       install into this directory (pip --target) instead of the environment
#                        [unset]; use it with PYTHONPATH=$HOROVOD_TARGET, e.g. to try an MPI build
#                        beside a shared environment's gloo build
#   MAKEFLAGS            [-j<number of CPUs>]; the CPU build takes about 5 minutes on 2 cores
#   FORCE=1              rebuild even if a working Horovod of that version is installed (and do
#                        not reuse a cached wheel)
#   GSGM_WHEEL_CACHE     directory of built Horovod wheels [${XDG_CACHE_HOME:-~/.cache}/gsgm/wheels]:
#                        a build keeps its wheel there, keyed by Horovod version, build kind, the
#                        HOROVOD_* settings, TensorFlow version, Python and machine; a later install
#                        with the same key (a fresh clone, a new environment, CI) installs that wheel
#                        in seconds instead of compiling for minutes. A cached wheel that fails the
#                        check below is deleted and rebuilt.
#
# Exit status 0 only when `import horovod.tensorflow` works afterwards and reports the requested
# controllers/operations (checked below).
set -euo pipefail

cd "$(dirname "$0")/.."

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
HOROVOD_VERSION="${HOROVOD_VERSION:-0.28.1}"
HOROVOD_BUILD="${HOROVOD_BUILD:-cpu}"
HOROVOD_TARGET="${HOROVOD_TARGET:-}"
# What the checks import: the target directory first, when there is one.
HVD_PYTHONPATH="${PYTHONPATH:-}"
if [[ -n "$HOROVOD_TARGET" ]]; then
    HOROVOD_TARGET="$(mkdir -p "$HOROVOD_TARGET" && cd "$HOROVOD_TARGET" && pwd)"
    HVD_PYTHONPATH="$HOROVOD_TARGET${PYTHONPATH:+:$PYTHONPATH}"
fi

log() { printf '[install_horovod] %s\n' "$*" >&2; }
die() { printf '[install_horovod] error: %s\n' "$*" >&2; exit 1; }

if ! "$PYTHON" -c "import tensorflow" 2>/dev/null; then
    die "TensorFlow is not importable with $PYTHON; install the project first (make install)"
fi

# Checks an installed Horovod: version, TensorFlow ops load, requested controller built in.
check_horovod() {
    HVD_WANT_VERSION="$HOROVOD_VERSION" HVD_WANT_BUILD="$HOROVOD_BUILD" TF_CPP_MIN_LOG_LEVEL=2 \
        PYTHONPATH="$HVD_PYTHONPATH" \
        "$PYTHON" - <<'EOF'
import os, sys
import horovod
import horovod.tensorflow as hvd
want = os.environ["HVD_WANT_VERSION"]
if horovod.__version__ != want:
    sys.exit(f"horovod {horovod.__version__} installed, {want} wanted")
problems = []
if not (hvd.gloo_built() or hvd.mpi_built()):
    problems.append("neither gloo nor MPI built in")
if os.environ["HVD_WANT_BUILD"] in ("mpi", "gpu") and not hvd.mpi_built():
    problems.append("MPI not built in")
if os.environ["HVD_WANT_BUILD"] == "gpu" and not hvd.nccl_built():
    problems.append("NCCL not built in")
if problems:
    sys.exit("; ".join(problems))
print(f"horovod {horovod.__version__}: gloo={bool(hvd.gloo_built())} mpi={bool(hvd.mpi_built())} nccl={bool(hvd.nccl_built())}")
EOF
}

if [[ "${FORCE:-0}" != 1 ]] && check_horovod 2>/dev/null; then
    log "a working Horovod $HOROVOD_VERSION is already installed (FORCE=1 rebuilds it)"
    exit 0
fi

case "$HOROVOD_BUILD" in
    cpu)
        export HOROVOD_WITH_GLOO="${HOROVOD_WITH_GLOO:-1}"
        if [[ -z "${HOROVOD_WITH_MPI:-}" ]]; then export HOROVOD_WITHOUT_MPI="${HOROVOD_WITHOUT_MPI:-1}"; fi
        ;;
    mpi)
        export HOROVOD_WITH_GLOO="${HOROVOD_WITH_GLOO:-1}" HOROVOD_WITH_MPI=1
        command -v "${MPICC:-mpicc}" >/dev/null ||
            die "HOROVOD_BUILD=mpi needs an MPI compiler wrapper (${MPICC:-mpicc}); Debian: apt-get install libopenmpi-dev openmpi-bin"
        ;;
    gpu)
        export HOROVOD_GPU_OPERATIONS="${HOROVOD_GPU_OPERATIONS:-NCCL}"
        export HOROVOD_WITH_GLOO="${HOROVOD_WITH_GLOO:-1}"
        if [[ -z "${HOROVOD_WITHOUT_MPI:-}" ]]; then export HOROVOD_WITH_MPI="${HOROVOD_WITH_MPI:-1}"; fi
        if ! command -v nvcc >/dev/null && [[ ! -x "${HOROVOD_CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]]; then
            die "HOROVOD_BUILD=gpu needs CUDA (nvcc on PATH or HOROVOD_CUDA_HOME); load your site's CUDA module"
        fi
        ;;
    *) die "HOROVOD_BUILD must be cpu, mpi or gpu, got '$HOROVOD_BUILD'" ;;
esac
export HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1
export MAKEFLAGS="${MAKEFLAGS:--j$(nproc 2>/dev/null || echo 2)}"

target=()
if [[ -n "$HOROVOD_TARGET" ]]; then target=(--target "$HOROVOD_TARGET" --upgrade); fi

# Horovod's runtime dependencies (horovodrun needs them); never let them touch numpy/TensorFlow.
# With HOROVOD_TARGET they are expected in the environment already (its own Horovod build).
install_runtime_dependencies() {
    if [[ -z "$HOROVOD_TARGET" ]]; then
        "$PYTHON" -m pip install "cloudpickle" "psutil" "pyyaml" "packaging" "cffi>=1.4.0"
    fi
}

finish() {
    check_horovod || die "Horovod installed but does not work; see the messages above"
    local horovodrun
    horovodrun="$(dirname "$PYTHON")/horovodrun"
    if [[ -n "$HOROVOD_TARGET" ]]; then horovodrun="$HOROVOD_TARGET/bin/horovodrun"; fi
    if [[ -x "$horovodrun" ]]; then PYTHONPATH="$HVD_PYTHONPATH" "$horovodrun" --check-build || true; fi
}

# The wheel cache: everything that changes the compiled library is in the key.
TF_VERSION="$("$PYTHON" -c 'import tensorflow as tf; print(tf.__version__)' 2>/dev/null | tail -n 1)"
PY_TAG="$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
SETTINGS_HASH="$({ env | grep '^HOROVOD_' | grep -v '^HOROVOD_TARGET=' | sort || true; echo "CXXFLAGS=${CXXFLAGS:-}"; } |
    sha256sum | cut -c1-12)"
WHEEL_CACHE="${GSGM_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gsgm/wheels}"
WHEEL_DIR="$WHEEL_CACHE/horovod-$HOROVOD_VERSION-$HOROVOD_BUILD-tf$TF_VERSION-$PY_TAG-$(uname -m)-$SETTINGS_HASH"
cached_wheel=""
if [[ -d "$WHEEL_DIR" ]]; then
    cached_wheel="$(find "$WHEEL_DIR" -maxdepth 1 -name "horovod-$HOROVOD_VERSION-*.whl" | head -n 1)"
fi
if [[ "${FORCE:-0}" != 1 && -n "$cached_wheel" ]]; then
    log "installing the cached wheel $cached_wheel (FORCE=1 compiles instead)"
    if "$PYTHON" -m pip install --no-deps --force-reinstall "${target[@]}" "$cached_wheel" &&
        install_runtime_dependencies && check_horovod; then
        finish
        exit 0
    fi
    log "the cached wheel does not work here; deleting it and compiling"
    rm -rf "$WHEEL_DIR"
fi

TF_INCLUDE="$("$PYTHON" -c 'import tensorflow as tf; print(tf.sysconfig.get_include())' 2>/dev/null | tail -n 1)"
[[ -d "$TF_INCLUDE" ]] || die "could not locate TensorFlow's include directory (got '$TF_INCLUDE')"
for dir in external/highwayhash external/farmhash_archive/src; do
    [[ -d "$TF_INCLUDE/$dir" ]] || die "TensorFlow's include directory lacks $dir; is this TF >= 2.16?"
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gsgm-horovod-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# Forwarding headers: old include path (as horovod/tensorflow/xla_mpi_ops.cc writes it) -> new path
# inside TensorFlow's include directory. Only the first one moved to a new name; the rest moved from
# tensorflow/compiler/xla/ to xla/. stream_executor/stream.h is only included by GPU builds.
FORWARDS=(
    "client/xla_builder.h:xla/hlo/builder/xla_builder.h"
    "service/custom_call_target_registry.h:xla/service/custom_call_target_registry.h"
    "service/hlo.pb.h:xla/service/hlo.pb.h"
    "shape.h:xla/shape.h"
    "xla_data.pb.h:xla/xla_data.pb.h"
    "stream_executor/stream.h:xla/stream_executor/stream.h"
)
COMPAT="$WORK/compat-include"
for entry in "${FORWARDS[@]}"; do
    old="${entry%%:*}" new="${entry#*:}"
    if [[ ! -f "$TF_INCLUDE/$new" ]]; then
        # Older TensorFlow (< 2.17) still has the old layout and needs no forwarding header.
        log "note: $TF_INCLUDE/$new not found; no forwarding header for tensorflow/compiler/xla/$old"
        continue
    fi
    mkdir -p "$(dirname "$COMPAT/tensorflow/compiler/xla/$old")"
    printf '#pragma once\n#include "%s"\n' "$new" >"$COMPAT/tensorflow/compiler/xla/$old"
done

export CXXFLAGS="${CXXFLAGS:-} -I$COMPAT -I$TF_INCLUDE/external/highwayhash -I$TF_INCLUDE/external/farmhash_archive/src"

log "building horovod==$HOROVOD_VERSION ($HOROVOD_BUILD: gloo=${HOROVOD_WITH_GLOO:-} mpi=${HOROVOD_WITH_MPI:-0}" \
    "gpu_ops=${HOROVOD_GPU_OPERATIONS:-none}) with $PYTHON, MAKEFLAGS=$MAKEFLAGS; this takes minutes"
started=$SECONDS
# Build a wheel (so that it can be cached), then install it.
"$PYTHON" -m pip wheel --no-build-isolation --no-cache-dir --no-binary horovod --no-deps \
    --wheel-dir "$WORK/wheel" "horovod==$HOROVOD_VERSION"
built_wheel="$(find "$WORK/wheel" -maxdepth 1 -name "horovod-*.whl" | head -n 1)"
[[ -n "$built_wheel" ]] || die "pip wheel produced no horovod wheel in $WORK/wheel"
"$PYTHON" -m pip install --no-deps --force-reinstall "${target[@]}" "$built_wheel"
install_runtime_dependencies
log "built in $((SECONDS - started)) s"

finish
# Keep the wheel only once it works; copied under a temporary name, then renamed into place.
if mkdir -p "$WHEEL_DIR" 2>/dev/null && cp "$built_wheel" "$WHEEL_DIR/.partial.$$" 2>/dev/null; then
    mv "$WHEEL_DIR/.partial.$$" "$WHEEL_DIR/$(basename "$built_wheel")"
    log "kept the wheel in $WHEEL_DIR for later installs"
else
    log "note: could not keep the wheel in $WHEEL_DIR (not writable); the next install compiles again"
fi
