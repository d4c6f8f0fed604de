"""Data-parallel training: one small object that every gsgm training loop uses.

FPCD was trained on 16 GPUs with Horovod (paper section III): each process (rank) trains on its own
shard of the jets with the same per-rank batch size, gradients are averaged over the ranks every
step, and the learning rate is multiplied by the number of ranks. A :class:`Distributed` object
carries what a training loop needs for that:

* ``rank``, ``size``, ``local_rank`` and ``is_chief`` (rank 0: the only rank that writes run
  directories, logs, progress bars and samples);
* :meth:`~Distributed.shard` and :meth:`~Distributed.steps_per_epoch`: each jet goes to exactly one
  rank (strided shards, :func:`gsgm.data.pipeline.shard_indices`), and every rank runs the same
  number of steps (a rank with one step more would wait forever for the others' gradients);
* :meth:`~Distributed.average_gradients`, called inside the model's ``train_step`` (FPCDModel does it
  in ``transform_gradients``): one grouped Horovod allreduce of all gradients;
* :meth:`~Distributed.broadcast_variables`: rank 0's weights, EMA weights and optimizer state to all
  ranks before training starts (see below);
* :meth:`~Distributed.average_scalars`: epoch metrics (validation loss, which early stopping uses)
  averaged over ranks, so that every rank takes the same decisions;
* :meth:`~Distributed.weights_in_sync`: a check that the ranks still hold the same weights.

The base class is the single-process case (no communication; constructing it with ``rank``/``size``
other than 0/1 pretends to be one rank of several, which unit tests use to check rank-0-only
writes). :class:`HorovodDistributed` implements the collectives with the low-level
``horovod.tensorflow`` API: ``horovod.tensorflow.keras`` does not work with Keras 3 (its
DistributedOptimizer silently never averages), and Keras 3 variables must be handed to Horovod as
their backing ``tf.Variable`` (``variable.value``).

Weights are broadcast once, after the optimizer's slot variables have been created and before the
first step (Horovod's examples broadcast after the first step only because their optimizers create
slots lazily; building them explicitly makes even the first step identical on all ranks).

How a process decides (:func:`init_distributed`), from the ``mode`` argument or else the
``GSGM_DISTRIBUTED`` environment variable:

* ``"none"``: single process; refused when a launcher started several processes;
* ``"horovod"``: Horovod, even with one rank; a clear error explains how to install it if missing;
* ``"auto"`` (default): Horovod when a launcher started several processes (``horovodrun``,
  ``mpirun``, ``srun``: ``HOROVOD_SIZE``, ``OMPI_COMM_WORLD_SIZE``, ``PMI_SIZE``,
  ``MV2_COMM_WORLD_SIZE`` or ``SLURM_STEP_NUM_TASKS`` > 1), else single process.

So ``python scripts/train.py ...`` and ``horovodrun -np 4 python scripts/train.py ...`` run the same
script unchanged.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gsgm.data.pipeline import shard_indices

ENV_MODE = "GSGM_DISTRIBUTED"
MODES = ("auto", "horovod", "none")
# Variables set by process launchers; their value is the number of processes started together.
LAUNCHER_SIZE_VARIABLES = (
    "HOROVOD_SIZE",  # horovodrun (gloo)
    "OMPI_COMM_WORLD_SIZE",  # Open MPI mpirun (also horovodrun --mpi)
    "PMI_SIZE",  # MPICH / Cray MPICH / srun with PMI
    "MV2_COMM_WORLD_SIZE",  # MVAPICH
    "SLURM_STEP_NUM_TASKS",  # tasks of an srun job step
)
# dtypes Horovod's TensorFlow ops accept; other variables (e.g. uint32 RNG states) are not broadcast.
_HOROVOD_DTYPES = (
    "uint8",
    "int8",
    "uint16",
    "int16",
    "int32",
    "int64",
    "float16",
    "float32",
    "float64",
    "bool",
)

INSTALL_HINT = (
    "Horovod is not installed in this Python environment ({python}). Build it with "
    "`scripts/install_horovod.sh` (CPU/gloo; `HOROVOD_BUILD=gpu scripts/install_horovod.sh` for NCCL on "
    "GPU clusters); a plain `pip install horovod` does not build against TensorFlow 2.21. "
    "To train in a single process instead, run without --horovod and without a multi-process launcher."
)


class DistributedSetupError(ValueError):
    """Distributed training was requested but cannot work as asked; the message says how to fix it."""


def launcher_world_size(environ: dict[str, str] | None = None) -> int:
    """Number of processes a launcher says it started together (1 when none did)."""
    environ = os.environ if environ is None else environ
    sizes = []
    for name in LAUNCHER_SIZE_VARIABLES:
        value = environ.get(name, "")
        if value.strip().isdigit():
            sizes.append(int(value))
    return max(sizes, default=1)


@dataclass
class Distributed:
    """Single-process training: no communication, rank 0 of 1.

    Attributes:
        rank: this process' index in [0, size).
        size: number of processes (ranks) training together.
        local_rank: index among the ranks on this node (picks the GPU).
        average: average gradients over ranks; False only as a negative control in tests (the ranks
            then train independently and their weights drift apart).
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    average: bool = True

    backend = "none"

    def __post_init__(self) -> None:
        if self.size < 1 or not 0 <= self.rank < self.size:
            raise ValueError(f"invalid rank {self.rank} of size {self.size}")

    # who does what ------------------------------------------------------------------------------
    @property
    def is_chief(self) -> bool:
        """Rank 0: the only rank that writes files, logs and progress bars."""
        return self.rank == 0

    def verbosity(self, verbose: int) -> int:
        """``verbose`` on the chief, 0 (silent) on the other ranks."""
        return verbose if self.is_chief else 0

    def describe(self) -> str:
        return f"{self.backend}: rank {self.rank} of {self.size} (local rank {self.local_rank})"

    # data ---------------------------------------------------------------------------------------
    def shard(self, n: int) -> np.ndarray:
        """Indices of this rank's jets out of ``n`` (every index in exactly one rank's shard)."""
        return shard_indices(n, self.rank, self.size)

    def steps_per_epoch(self, n: int, batch_size: int) -> int:
        """Steps every rank runs per epoch on ``n`` jets sharded over the ranks.

        All ranks must run the same number of steps (each step waits for every rank's gradients).
        Shards differ by at most one jet; the count is that of the smallest shard, so the larger
        shards lose their last jet in an epoch only when the smallest shard fills whole batches.
        """
        smallest = int(n) // self.size
        if smallest < 1:
            raise DistributedSetupError(f"{n} jets cannot be shared by {self.size} ranks")
        return math.ceil(smallest / int(batch_size))

    # collectives (identity on one process) ------------------------------------------------------
    def average_gradients(self, gradients: Sequence[Any]) -> list[Any]:
        """Average gradients over ranks (inside ``train_step``); ``None`` entries pass through."""
        return list(gradients)

    def broadcast_variables(self, variables: Sequence[Any]) -> None:
        """Overwrite ``variables`` (Keras or tf variables) with rank 0's values."""

    def average_scalars(self, values: dict[str, float]) -> dict[str, float]:
        """Mean of each named scalar over ranks (every rank must pass the same names)."""
        return {k: float(v) for k, v in values.items()}

    def allgather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable), in rank order."""
        return [obj]

    def allgather_tensor(self, tensor: Any) -> Any:
        """Every rank's ``tensor`` concatenated along axis 0 in rank order (in graphs too)."""
        return tensor

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` (picklable) on every rank."""
        return obj

    def barrier(self) -> None:
        """Wait until every rank got here."""

    # consistency --------------------------------------------------------------------------------
    def weights_in_sync(self, variables: Sequence[Any], rtol: float = 1e-4) -> tuple[bool, float]:
        """Whether every rank holds the same ``variables`` (compared through per-variable sums).

        Returns:
            (in_sync, largest relative difference of a per-variable sum from rank 0's).
        """
        sums = np.array([float(np.sum(np.asarray(v, dtype=np.float64))) for v in variables])
        gathered = np.asarray(self.allgather_object(sums))
        scale = np.maximum(np.abs(gathered[0]), 1.0)
        spread = float(np.max(np.abs(gathered - gathered[0]) / scale)) if gathered.size else 0.0
        return spread <= rtol, spread


class HorovodDistributed(Distributed):
    """Collectives through ``horovod.tensorflow`` (gloo or MPI on CPU, NCCL on GPU)."""

    backend = "horovod"

    def __init__(self, hvd: Any, average: bool = True):
        self._hvd = hvd
        self._scalar_calls = 0
        self._broadcast_calls = 0
        super().__init__(rank=hvd.rank(), size=hvd.size(), local_rank=hvd.local_rank(), average=average)

    def average_gradients(self, gradients: Sequence[Any]) -> list[Any]:
        import tensorflow as tf

        gradients = list(gradients)
        if not self.average or self.size == 1:
            return gradients
        present = [i for i, g in enumerate(gradients) if g is not None]
        dense = [tf.convert_to_tensor(gradients[i]) for i in present]  # IndexedSlices -> dense
        reduced = self._hvd.grouped_allreduce(dense, op=self._hvd.Average, name="gsgm_average_gradients")
        for i, value in zip(present, reduced, strict=True):
            gradients[i] = value
        return gradients

    def broadcast_variables(self, variables: Sequence[Any]) -> None:
        import tensorflow as tf

        backing = []
        for variable in variables:
            # Keras 3 variables wrap a tf.Variable; Horovod needs the tf.Variable itself.
            value = variable if isinstance(variable, tf.Variable) else getattr(variable, "value", None)
            if not isinstance(value, tf.Variable):
                raise TypeError(f"cannot broadcast {variable!r}: no backing tf.Variable")
            if value.dtype.name in _HOROVOD_DTYPES:
                backing.append(value)
        # Eager broadcasts named by position: Horovod matches collectives across ranks by name, and
        # Keras' variable names need not agree between processes (they count layers built so far).
        self._broadcast_calls += 1
        for i, value in enumerate(backing):
            name = f"gsgm_broadcast_{self._broadcast_calls}_{i}"
            value.assign(self._hvd.broadcast(value, root_rank=0, name=name))

    def average_scalars(self, values: dict[str, float]) -> dict[str, float]:
        import tensorflow as tf

        names = sorted(values)
        reference = self.broadcast_object(names)
        if names != reference:
            raise DistributedSetupError(f"rank {self.rank} reports metrics {names}, rank 0 {reference}")
        self._scalar_calls += 1
        stacked = tf.constant([float(values[k]) for k in names], dtype=tf.float64)
        mean = self._hvd.allreduce(stacked, op=self._hvd.Average, name=f"gsgm_scalars_{self._scalar_calls}")
        return {k: float(v) for k, v in zip(names, mean.numpy(), strict=True)}

    def allgather_object(self, obj: Any) -> list[Any]:
        return list(self._hvd.allgather_object(obj))

    def allgather_tensor(self, tensor: Any) -> Any:
        return self._hvd.allgather(tensor, name="gsgm_allgather_tensor")

    def broadcast_object(self, obj: Any) -> Any:
        return self._hvd.broadcast_object(obj, root_rank=0)

    def barrier(self) -> None:
        # An allreduce completes on every rank only after all ranks entered it.
        self.allgather_object(None)


def _pin_gpu(local_rank: int) -> None:
    """Let this process see one GPU (local_rank modulo the GPUs it can see), with memory growth."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return
    gpu = gpus[local_rank % len(gpus)]
    try:
        tf.config.set_visible_devices(gpu, "GPU")
        tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError as err:  # TensorFlow already created its GPU context
        raise DistributedSetupError(
            "init_distributed() must run before TensorFlow touches the GPUs (before building models "
            f"or creating tensors): {err}"
        ) from None


def init_distributed(mode: str | None = None, *, average_gradients: bool = True) -> Distributed:
    """Set up this process for (possibly) data-parallel training and return its :class:`Distributed`.

    Call it once per process, first thing (before any model or tensor is created): under Horovod it
    initialises Horovod and pins the process to the GPU of its local rank.

    Args:
        mode: ``"auto"``, ``"horovod"`` or ``"none"`` (see the module docstring); default: the
            ``GSGM_DISTRIBUTED`` environment variable, else ``"auto"``.
        average_gradients: False disables the gradient allreduce. For tests only (negative control):
            the ranks then train independently and end with different weights.

    Raises:
        DistributedSetupError: Horovod requested (or needed by a multi-process launch) but not
            installed, or a multi-process launch with ``mode="none"``.
    """
    mode = (mode or os.environ.get(ENV_MODE) or "auto").lower()
    if mode not in MODES:
        raise DistributedSetupError(f"distributed mode must be one of {MODES}, got {mode!r}")
    world = launcher_world_size()
    if mode == "none":
        if world > 1:
            raise DistributedSetupError(
                f"this process is one of {world} started by a launcher, but distributed training is off "
                f"(mode 'none'): each process would train alone into the same run; use --distributed "
                "horovod (or auto), or start a single process"
            )
        return Distributed(average=average_gradients)
    if mode == "auto" and world == 1:
        return Distributed(average=average_gradients)
    try:
        import horovod.tensorflow as hvd
    except ImportError as err:
        hint = INSTALL_HINT.format(python=sys.executable)
        reason = f"launched as {world} processes" if mode == "auto" else "Horovod requested"
        raise DistributedSetupError(f"{reason}, but: {hint} (import error: {err})") from None
    hvd.init()
    if world > 1 and hvd.size() != world:
        # e.g. srun started the processes but Horovod was built without MPI: each process would then
        # be a one-rank Horovod job training alone.
        raise DistributedSetupError(
            f"the launcher started {world} processes but Horovod sees {hvd.size()} (gloo={hvd.gloo_built()}, "
            f"mpi={hvd.mpi_built()}): launch with horovodrun, or for srun/mpirun build Horovod with MPI "
            "(HOROVOD_BUILD=gpu or HOROVOD_WITH_MPI=1 scripts/install_horovod.sh)"
        )
    _pin_gpu(hvd.local_rank())
    return HorovodDistributed(hvd, average=average_gradients)
