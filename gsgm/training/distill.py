"""Progressive distillation of a trained run of any family, stage after stage, into loadable run directories.

A chain halves the number of sampling steps until it reaches ``until``::

    RUN/                           the trained model, sampled with N0 steps (or any number)
    RUN/distill/chain.json         start steps N0 and epochs per stage of this chain
    RUN/distill/steps-256/         student of RUN (N0 = 512), samples in 256 steps
    RUN/distill/steps-128/         student of steps-256
    ...
    RUN/distill/steps-001/         one step

Each stage is a complete run directory (gsgm.training.run_dir): config.json (``sampling.num_steps`` =
the stage's steps, ``training.epochs`` = epochs of the stage), the base run's preprocessing.json,
metadata.json (teacher, data hash...), history, best weights and checkpoints written by
:func:`gsgm.training.loop.fit_epochs`. A stage's weights have the base run's layout, so
``family.load_run(stage)`` and ``scripts/sample.py --run stage`` work as for any run, and
:func:`resolve_run_for_steps` maps ``(RUN, steps)`` to the stage that samples in that many steps.

The family supplies the data (:meth:`Family.prepare_data` with the base run's preprocessing), the
teacher (:meth:`Family.load_run`) and the student (:meth:`Family.build_distillation_model`); its
config must have ``sampling.num_steps``. Under Horovod every rank trains on its shard of the data
and only rank 0 writes.

Running the chain again continues it: finished stages are skipped, an interrupted stage resumes from its
newest checkpoint (the teacher is reloaded from its own run directory), later stages follow.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gsgm.data.loading import resolve_data_dir
from gsgm.training.distributed import Distributed
from gsgm.training.driver import dump_final_weights, rank_datasets
from gsgm.training.family import Family, PreparedData
from gsgm.training.loop import fit_epochs
from gsgm.training.optim import make_optimizer
from gsgm.training.run_dir import RunDirectory
from gsgm.utils.atomic import write_json_atomic
from gsgm.utils.provenance import now_iso, package_versions

# (prepared data of the base run, metadata about the data): see prepare_training_data.
TrainingData = tuple[PreparedData, dict]

DISTILL_DIR = "distill"
CHAIN_FILE = "chain.json"


class DistillationSetupError(ValueError):
    """The requested distillation is inconsistent with the run or with the chain already on disk."""


def stage_dir(run: str | os.PathLike, num_steps: int) -> Path:
    """Run directory of the stage that samples in ``num_steps`` steps: ``RUN/distill/steps-NNN``."""
    return Path(run) / DISTILL_DIR / f"steps-{int(num_steps):03d}"


def chain_steps(start_steps: int, until: int) -> list[int]:
    """Step counts of the stages from ``start_steps`` (exclusive) down to ``until`` by halving.

    Raises:
        DistillationSetupError: unless ``start_steps = until * 2**k`` with ``k >= 1``.
    """
    if until < 1:
        raise DistillationSetupError(f"--until must be >= 1 step, got {until}")
    ratio = start_steps // until
    if ratio < 2 or start_steps % until or ratio & (ratio - 1):
        nearest = until * 2 ** max(1, ratio.bit_length() - 1)
        raise DistillationSetupError(
            f"each stage halves the steps, so the start ({start_steps} steps) must be {until} times a power "
            f"of two >= 2 to reach --until {until} (e.g. --start-steps {nearest})"
        )
    steps = [start_steps >> k for k in range(1, ratio.bit_length())]
    return steps


def _stage_progress(stage: RunDirectory) -> tuple[int, int, bool]:
    """(epochs finished, epochs planned, finished) of a stage directory that exists."""
    # Read without the family's validator: only the number of epochs is needed here.
    epochs = int(json.loads(stage.config_path.read_text())["training"]["epochs"])
    latest = stage.latest_checkpoint()
    if latest is None:
        return 0, epochs, False
    state = json.loads((latest / "state.json").read_text())
    return state["next_epoch"], epochs, state["next_epoch"] >= epochs or state["stopped_early"]


def stage_is_complete(path: str | os.PathLike) -> bool:
    """Whether the stage directory at ``path`` finished training (all epochs, or stopped early)."""
    stage = RunDirectory(path)
    return stage.exists() and _stage_progress(stage)[2]


def _epochs_value(epochs: int | Sequence[int]) -> int | list[int]:
    """A count as the chain file stores it: an int, or a list of ints (epochs, one per stage)."""
    if isinstance(epochs, Sequence):
        return [int(e) for e in epochs]
    return int(epochs)


def _stage_epochs(epochs: int | list[int], steps: list[int]) -> list[int]:
    """Epochs of each stage of ``steps`` (the students' step counts, first stage first)."""
    counts = [epochs] * len(steps) if isinstance(epochs, int) else list(epochs)
    if len(counts) != len(steps):
        raise DistillationSetupError(
            f"--epochs-per-stage lists {len(counts)} counts for {len(steps)} stages "
            f"({' -> '.join(str(n) for n in [2 * steps[0], *steps])}): "
            "give one count, or one per stage"
        )
    for count in counts:
        if count < 1:
            raise DistillationSetupError(f"--epochs-per-stage must be >= 1, got {count}")
    return counts


def _read_chain(run: Path) -> dict | None:
    path = run / DISTILL_DIR / CHAIN_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _existing_stages(run: Path) -> dict[int, Path]:
    """{steps: stage directory} for every stage directory with a config under RUN/distill."""
    stages = {}
    for path in sorted((run / DISTILL_DIR).glob("steps-*")):
        suffix = path.name.removeprefix("steps-")
        if suffix.isdigit() and RunDirectory(path).exists():
            stages[int(suffix)] = path
    return stages


def available_steps(run: str | os.PathLike) -> dict[int, Path]:
    """{steps: run directory} that sample in that many steps: finished stages of the run's chain.

    The base run itself is not listed (it samples with any number of steps; see
    :func:`resolve_run_for_steps`).
    """
    return {n: p for n, p in _existing_stages(Path(run)).items() if stage_is_complete(p)}


def resolve_run_for_steps(run: str | os.PathLike, steps: int | None) -> Path:
    """The run directory to sample from when ``steps`` DDIM steps are asked of ``run``.

    * ``steps`` None, or ``run`` has no distillation chain: ``run`` itself (a distilled stage passed
      directly must be asked for its own step count).
    * A finished stage samples in ``steps``: that stage (``RUN/distill/steps-NNN``).
    * ``steps`` >= the chain's start: ``run`` (the undistilled model, for which the steps are a choice).

    Raises:
        ValueError: ``steps`` lies below the chain's start but no finished stage has it; the message lists
            the available step counts (and says whether the stage is still being distilled).
    """
    run = Path(run)
    if steps is None:
        return run
    chain = _read_chain(run)
    if chain is None:
        distilled = RunDirectory(run).read_metadata().get("distillation")
        if distilled and distilled["num_steps"] != steps:
            raise ValueError(
                f"{run} is a student distilled to sample in {distilled['num_steps']} steps, not {steps}: "
                f"use --steps {distilled['num_steps']}, or pass the base run to pick the stage for {steps}"
            )
        return run
    stages, complete = _existing_stages(run), available_steps(run)
    if steps in complete:
        return complete[steps]
    start = int(chain["start_steps"])
    if steps >= start:
        return run
    listing = ", ".join(
        [f"{start} or more (undistilled {run})"] + [str(n) for n in sorted(complete, reverse=True)]
    )
    if steps in stages:
        done, epochs, _ = _stage_progress(RunDirectory(stages[steps]))
        raise ValueError(
            f"the {steps}-step stage {stages[steps]} is not finished (epoch {done} of {epochs}); continue it "
            f"with scripts/distill.py --run {run} --until {steps}. Available steps: {listing}"
        )
    raise ValueError(
        f"{run} has no distilled model for {steps} steps. Available steps: {listing}. Distil further with "
        f"scripts/distill.py --run {run} --until <N> (N = {start} / 2**k)"
    )


def _stage_config(family: Family, base_cfg: Any, num_steps: int, epochs: int) -> Any:
    cfg = copy.deepcopy(base_cfg)
    cfg.name = f"{base_cfg.name}-distill-{num_steps:03d}"
    cfg.description = (
        f"{base_cfg.description} | Progressive distillation stage: samples in {num_steps} steps."
    )
    cfg.sampling.num_steps = int(num_steps)
    if getattr(cfg.sampling, "sampler", "ddim") == "dpm++2m":
        # The student learns its teacher's DDIM step pairs (gsgm.diffusion.distillation), so it
        # samples with DDIM whichever ODE solver the teacher's own sampling used.
        cfg.sampling.sampler = "ddim"
    training = family.training_section(cfg)
    training.epochs = int(epochs)
    # Each stage draws its own noise and data order (a stream id only; the weights come from the teacher).
    training.seed = family.training_section(base_cfg).seed + int(num_steps)
    return cfg


def prepare_training_data(family: Family, base: RunDirectory, cfg: Any, data: str | None) -> TrainingData:
    """The base run's training data, normalised and split exactly as the base run split them.

    Returns:
        (the family's prepared data, a dict describing the data for the stage's metadata). The hash is
        checked against the base run's.
    """
    metadata = base.read_metadata()
    source = data or metadata.get("data_source")
    if source is None:
        raise DistillationSetupError(f"{base.path}/metadata.json names no data source: pass --data")
    # The same loading, split and normalisation as the base run (``resume_run``: its preprocessing).
    prepared = family.prepare_data(
        cfg,
        source,
        max_per_class=metadata.get("max_jets_per_class"),
        options=family.check_options(cfg, family.resumed_options(metadata, {})),
        resume_run=base,
    )
    if metadata.get("data_sha256") not in (None, prepared.sha256):
        raise DistillationSetupError(
            f"the training data in {source} differ from the data {base.path} was trained on "
            f"(sha256 {prepared.sha256[:12]} != {metadata['data_sha256'][:12]}); "
            "pass --data with the original files"
        )
    info = {
        "data_source": str(source),
        "data_dir": str(resolve_data_dir(source)),
        "data_sha256": prepared.sha256,
        "num_train": int(len(prepared.train_arrays[0])),
        "num_valid": int(len(prepared.valid_arrays[0])),
        "split_seed": family.training_section(cfg).seed,
    }
    return prepared, info


def _create_stage(
    family: Family, stage: RunDirectory, base: RunDirectory, teacher: Path, cfg: Any, data_info: dict
) -> None:
    """Write a new stage's preprocessing, metadata and (last, so ``exists()`` means complete) config."""
    stage.path.mkdir(parents=True, exist_ok=True)
    if base.preprocessing_path.is_file():
        shutil.copyfile(base.preprocessing_path, stage.preprocessing_path)
    metadata = dict(base.read_metadata())
    metadata.update(data_info)
    metadata.update(
        {
            "created": now_iso(),
            "command": " ".join(shlex.quote(a) for a in sys.argv),
            "family": family.name,
            "seed": family.training_section(cfg).seed,
            "versions": package_versions(),
            "distillation": {
                "num_steps": cfg.sampling.num_steps,
                "teacher_steps": 2 * cfg.sampling.num_steps,
                # Relative to the base run, so that a moved run directory stays consistent.
                "teacher": os.path.relpath(teacher, base.path),
                "teacher_path": str(teacher.resolve()),
                "base_run": str(base.path.resolve()),
            },
        }
    )
    stage.write_metadata(metadata)
    family.save_config(cfg, stage.config_path)


def distill_stage(
    family: Family,
    base_run: str | os.PathLike,
    teacher_run: str | os.PathLike,
    num_steps: int,
    epochs: int,
    data: str | None = None,
    verbose: int = 2,
    training_data: TrainingData | None = None,
    distributed: Distributed | None = None,
    debug_dump: str | os.PathLike | None = None,
) -> RunDirectory:
    """Train (or continue) the ``num_steps``-step student of ``teacher_run`` into its stage directory.

    Args:
        family: the base run's family.
        base_run: the trained run the chain starts from (data, preprocessing, architecture).
        teacher_run: run directory of the teacher, sampling in ``2 * num_steps`` steps (the base run for
            the first stage, else the previous stage).
        num_steps: the student's steps; the stage goes to ``stage_dir(base_run, num_steps)``.
        epochs: epochs of this stage (used when the stage is created; an existing stage keeps its own).
        data: data directory or "builtin" (default: the base run's recorded data source).
        verbose: 0 silent, 1 progress bar, 2 one line per epoch.
        training_data: :func:`prepare_training_data` of the base run, to share it between stages.
        distributed: the process group (default single process); only rank 0 writes.
        debug_dump: testing aid: every rank writes the sample indices it trains on and its final
            weights into ``debug_dump/steps-NNN/rank<r>/`` (as :func:`gsgm.training.driver.train_run`).

    Returns:
        The stage's RunDirectory, finished (all epochs, or stopped early).
    """
    dist = distributed or Distributed()
    base = RunDirectory(base_run).require()
    stage = RunDirectory(stage_dir(base.path, num_steps))
    base_cfg = family.load_config(base.config_path)
    if training_data is None:
        training_data = prepare_training_data(family, base, base_cfg, data)
    prepared, data_info = training_data
    exists = bool(dist.allgather_object(stage.exists())[0])
    if exists:
        cfg = family.load_config(stage.config_path)
        if cfg.sampling.num_steps != num_steps:
            raise DistillationSetupError(
                f"{stage.path} samples in {cfg.sampling.num_steps} steps, not {num_steps}; remove it"
            )
    else:
        cfg = _stage_config(family, base_cfg, num_steps, epochs)
        if dist.is_chief:
            _create_stage(family, stage, base, Path(teacher_run), cfg, data_info)
    dist.barrier()

    teacher, teacher_cfg = family.load_run(teacher_run)
    if teacher_cfg.sampling.num_steps != 2 * num_steps and Path(teacher_run) != base.path:
        raise DistillationSetupError(
            f"teacher {teacher_run} samples in {teacher_cfg.sampling.num_steps} steps; a {num_steps}-step "
            f"student needs a {2 * num_steps}-step teacher"
        )
    training = family.training_section(cfg)
    student = family.build_distillation_model(cfg, teacher, num_steps, seed=training.seed)
    batch_size = int(training.batch_size)
    steps_per_epoch = dist.steps_per_epoch(len(prepared.train_arrays[0]), batch_size)
    student.compile(
        optimizer=make_optimizer(training, steps_per_epoch, dist.size, family.learning_rate_schedule),
        jit_compile=False if dist.size > 1 else "auto",
    )

    debug_dir = None if debug_dump is None else Path(debug_dump) / stage.path.name
    train_dataset, valid_dataset = rank_datasets(
        family, prepared, batch_size, int(training.seed), dist, steps_per_epoch, debug_dir
    )
    fit_epochs(
        stage,
        student,
        train_dataset,
        valid_dataset,
        epochs=training.epochs,
        patience=training.early_stopping_patience,
        # Always "resume": a stage without a checkpoint starts at epoch 0 with the teacher's weights.
        resume=True,
        verbose=verbose,
        distributed=dist,
        steps_per_epoch=steps_per_epoch if dist.size > 1 else None,
    )
    if debug_dir is not None:
        dump_final_weights(debug_dir, student, dist)
    return stage


def distill_chain(
    family: Family,
    run: str | os.PathLike,
    until: int = 1,
    epochs_per_stage: int | Sequence[int] | None = None,
    start_steps: int | None = None,
    data: str | None = None,
    verbose: int = 2,
    log: Callable[[str], None] | None = None,
    distributed: Distributed | None = None,
    debug_dump: str | os.PathLike | None = None,
) -> list[Path]:
    """Distil ``run`` from ``start_steps`` down to ``until`` steps, halving per stage; resumable.

    Args:
        family: the run's family (:func:`gsgm.families.family_of_run`).
        run: a trained run directory (scripts/train.py).
        until: steps of the last stage (1 for single-step generation).
        epochs_per_stage: epochs of each new stage (default: the run's training.epochs), or one count
            per stage, first stage first (``[1, 1, 2, 3, 4, 7]`` for 64 -> 1): the last halvings, where the
            student's two-step target is furthest from one step, get the larger share of a budget.
        start_steps: steps of the first teacher, the undistilled run (default: its sampling.num_steps).
        data: data directory or "builtin" (default: the run's recorded data source).
        verbose: Keras verbosity for the epochs.
        log: called with one line per stage (progress messages), e.g. ``print``; rank 0 only.
        distributed: the process group (default single process): every rank trains on its shard,
            rank 0 writes the chain file and the stages.
        debug_dump: testing aid, see :func:`distill_stage`.

    Returns:
        The stage directories, from ``start_steps / 2`` to ``until`` steps.

    Raises:
        DistillationSetupError: steps that cannot be halved down to ``until``, or a chain already on disk
            with a different start or number of epochs.
    """
    dist = distributed or Distributed()
    log = (log or (lambda message: None)) if dist.is_chief else (lambda message: None)
    base = RunDirectory(run).require()
    base.inference_weights()  # fail now, not after loading the data, if the run was never trained
    base_cfg = family.load_config(base.config_path)
    if RunDirectory(base.path).read_metadata().get("distillation"):
        raise DistillationSetupError(f"{base.path} is itself a distillation stage: pass the base run")
    chain = _read_chain(base.path)
    if chain is None:
        chain = {
            # None means the default; 0 is refused below, never silently replaced by the default
            "start_steps": int(
                family.distillation_start_steps(base_cfg) if start_steps is None else start_steps
            ),
            "epochs_per_stage": _epochs_value(
                base_cfg.training.epochs if epochs_per_stage is None else epochs_per_stage
            ),
            "created": now_iso(),
        }
    else:
        for key, value in (("start_steps", start_steps), ("epochs_per_stage", epochs_per_stage)):
            if value is not None and _epochs_value(value) != chain[key]:
                raise DistillationSetupError(
                    f"{base.path / DISTILL_DIR} holds a chain with {key.replace('_', ' ')} {chain[key]}, "
                    f"not {value}: omit the option to continue it, or distil a copy of the run without "
                    f"its {DISTILL_DIR}/ directory"
                )
    steps = chain_steps(chain["start_steps"], until)
    stage_epochs = _stage_epochs(chain["epochs_per_stage"], steps)
    dist.barrier()  # every rank has read the chain file before rank 0 (re)writes it
    if dist.is_chief:
        write_json_atomic(base.path / DISTILL_DIR / CHAIN_FILE, chain)

    prepared = None
    teacher = base.path
    stages = []
    for num_steps, epochs in zip(steps, stage_epochs, strict=True):
        stage = stage_dir(base.path, num_steps)
        if stage_is_complete(stage):
            log(f"{num_steps:>4} steps: finished earlier ({stage})")
        else:
            if prepared is None:
                prepared = prepare_training_data(family, base, base_cfg, data)
            if RunDirectory(stage).exists():
                done, epochs, _ = _stage_progress(RunDirectory(stage))
                log(f"{num_steps:>4} steps: resuming at epoch {done} of {epochs} ({stage})")
            else:
                log(f"{num_steps:>4} steps: distilling from {teacher} ({2 * num_steps} steps) into {stage}")
            distill_stage(
                family,
                base.path,
                teacher,
                num_steps,
                epochs,
                data,
                verbose,
                training_data=prepared,
                distributed=dist,
                debug_dump=debug_dump,
            )
        stages.append(stage)
        teacher = stage
    return stages


__all__ = [
    "DistillationSetupError",
    "available_steps",
    "chain_steps",
    "distill_chain",
    "distill_stage",
    "prepare_training_data",
    "resolve_run_for_steps",
    "stage_dir",
    "stage_is_complete",
]
