"""Load a truth directory and one or more generated directories into per-class comparisons.

Used by ``scripts/evaluate.py`` and ``plots/plot_jets.py``. The rules:

* **Recentring.** FPCD's generated jets come out recentred (``gsgm.data.preprocessing``: each jet's
  constituents are shifted so that their summed four-momentum points along eta_rel = phi_rel = 0),
  while JetNet-format truth is relative to the full jet's axis. Both samples are therefore passed
  through :func:`~gsgm.data.preprocessing.recenter_particles` before any comparison. It is idempotent,
  so FPCD output is unchanged, and samples from any other generator are treated alike. Jet mass, pT,
  the EFPs and hence W1M, W1EFP, FPD and KPD are unchanged by it (a boost along the beam and a rotation);
  W1P and the EMD in COV/MMD depend on it.
* **Sample sizes.** Every comparison of a class uses the same number n of jets on each side:
  n = min(``jets_per_class``, half the truth jets of the split, the jets of every generated sample).
  The truth jets of the split (a seeded permutation) are cut into two disjoint halves: half A is the
  reference of every model, half B is compared with A to give the truth-vs-truth *floor*, the value a
  perfect generator would reach with this many jets. Equal sizes matter because every metric here is
  biased upwards by finite samples by an amount that depends on n.
* **Truth split.** ``"valid,test"`` by default: the 30 % of jets that jetnet's default 70/15/15 split
  does not train on (jetnet's FPND reference statistics use the same 30 %). ``"all"`` uses every jet of
  the files, including the training jets: more jets, but a model that memorised its training set
  would look better than it is.
* **Whole sets only.** A generated directory written by ``gsgm sample`` is read only if its files
  match its manifest (:func:`gsgm.generation.sample_sets.verify_sample_directory`): a directory mixing
  files of several runs, or one whose sampling was interrupted, is refused. A truth directory must
  not be a generated sample set, and its jets must have pT, mass and pt_rel >= 0.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gsgm.data.jetnet_format import (
    JET_CLASSES,
    PARTICLE_COUNTS,
    JetSample,
    check_physical_kinematics,
    class_file_name,
    parse_classes,
)
from gsgm.data.loading import SPLITS, jetnet_split_indices, resolve_data_dir
from gsgm.data.preprocessing import recenter_particles
from gsgm.generation.jet_files import read_jet_class_file
from gsgm.generation.sample_sets import SampleSetError, read_manifest

DEFAULT_TRUTH_SPLIT = "valid,test"
# Below this many jets per sample the metrics are noise; refuse rather than print meaningless tables.
MIN_JETS_PER_CLASS = 10


@dataclass
class ClassComparison:
    """The samples of one class, recentred, ready for the metrics and plots.

    Attributes:
        jet_class: "g", "q", "t", "w" or "z".
        truth: reference truth half A, n jets.
        truth_floor: disjoint truth half B, n jets (compared with ``truth`` for the floor).
        generated: {label: n generated jets}, in the order given.
        truth_available: jets of the truth split before any cut (for the report).
    """

    jet_class: str
    truth: JetSample
    truth_floor: JetSample
    generated: dict[str, JetSample]
    truth_available: int

    @property
    def n(self) -> int:
        return len(self.truth)


@dataclass
class Comparison:
    """Everything ``evaluate``/``plot_jets`` compare: per-class samples plus where they came from."""

    truth_dir: str
    truth_split: str
    num_particles: int
    models: list[tuple[str, str]]  # (label, directory)
    classes: dict[str, ClassComparison] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    recentred: bool = True


def parse_splits(text: str) -> list[str]:
    """``"valid,test"`` -> ["valid", "test"]; validated against the data layer's splits."""
    splits = [s.strip() for s in text.split(",") if s.strip()]
    if not splits:
        raise ValueError("no truth split given")
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid splits are {', '.join(SPLITS)}")
    if "all" in splits and len(splits) > 1:
        raise ValueError(f"split 'all' cannot be combined with others, got {text!r}")
    if len(set(splits)) != len(splits):
        raise ValueError(f"split given twice in {text!r}")
    return splits


def _counts_present(directory: Path, classes: Sequence[str]) -> list[int]:
    """Particle counts for which ``directory`` holds a file of every class in ``classes``."""
    return [p for p in PARTICLE_COUNTS if all((directory / class_file_name(c, p)).is_file() for c in classes)]


def _classes_present(directory: Path, num_particles: int) -> list[str]:
    return [c for c in JET_CLASSES if (directory / class_file_name(c, num_particles)).is_file()]


def _describe(directory: Path) -> str:
    names = sorted(p.name for p in directory.glob("*.hdf5")) if directory.is_dir() else []
    return ", ".join(names) if names else "no .hdf5 files"


def resolve_layout(
    truth_dir: Path,
    gen_dirs: Sequence[tuple[str, Path]],
    classes: Sequence[str] | None,
    num_particles: int | None,
) -> tuple[list[str], int]:
    """Decide the classes and the particle count, or raise one clear error.

    Classes default to those of the first generated directory; the particle count to the one every
    directory has files for. A class or count missing anywhere is a FileNotFoundError naming the
    directory, the missing file and what the directory does hold; directories that hold only different
    particle counts give a ValueError "mismatched particle counts".
    """
    directories = [("truth", truth_dir), *((f"generated '{label}'", path) for label, path in gen_dirs)]
    for role, directory in directories:
        if not directory.is_dir():
            raise FileNotFoundError(f"{role} directory not found: {directory}")
    if num_particles is not None and num_particles not in PARTICLE_COUNTS:
        raise ValueError(f"--particles must be one of {PARTICLE_COUNTS}, got {num_particles}")
    first_label, first_dir = gen_dirs[0]
    if classes is None:
        counts = [num_particles] if num_particles else list(PARTICLE_COUNTS)
        found = {p: _classes_present(first_dir, p) for p in counts}
        count = next((p for p in counts if found[p]), None)
        if count is None and num_particles:
            other = [p for p in PARTICLE_COUNTS if p != num_particles and _classes_present(first_dir, p)]
            if other:
                raise ValueError(
                    f"mismatched particle counts: generated '{first_label}' ({first_dir}) has no "
                    f"{num_particles}-particle files, only {other[0]}-particle ones ({_describe(first_dir)})"
                )
        if count is None:
            raise FileNotFoundError(
                f"generated '{first_label}' ({first_dir}) has no JetNet class files ({_describe(first_dir)})"
            )
        classes = found[count]
    classes = parse_classes(list(classes))
    if num_particles is None:
        per_dir = {role: _counts_present(directory, classes) for role, directory in directories}
        common = [p for p in PARTICLE_COUNTS if all(p in counts for counts in per_dir.values())]
        if not common and not all(per_dir.values()):
            # Some directory lacks a class whatever the count: take the count with the most files, and
            # let the check below name the first missing one.
            def files_at(p: int) -> int:
                return sum((d / class_file_name(c, p)).is_file() for _, d in directories for c in classes)

            common = [max(PARTICLE_COUNTS, key=files_at)]
        if not common:
            described = "; ".join(f"{role}: {counts or 'none'}" for role, counts in per_dir.items())
            raise ValueError(
                f"mismatched particle counts for classes {','.join(classes)}: no count has every file in "
                f"every directory ({described}); pass --particles 30|150 to see which file is missing"
            )
        num_particles = common[0]
    for role, directory in directories:
        missing = [c for c in classes if not (directory / class_file_name(c, num_particles)).is_file()]
        if missing:
            other = [p for p in PARTICLE_COUNTS if p != num_particles and _counts_present(directory, missing)]
            hint = f"; it has {other[0]}-particle files: mismatched particle counts?" if other else ""
            raise FileNotFoundError(
                f"{role} ({directory}) has no file for class {missing[0]} with {num_particles} particles: "
                f"missing {class_file_name(missing[0], num_particles)} (found: {_describe(directory)}){hint}"
            )
    return classes, num_particles


def _sample(particles: np.ndarray, jets: np.ndarray, jet_class: str, recenter: bool) -> JetSample:
    labels = np.full(len(jets), JET_CLASSES.index(jet_class), dtype=np.int32)
    particles = recenter_particles(particles) if recenter else particles
    return JetSample(particles, jets, labels)


def load_comparison(
    truth_dir: str | os.PathLike,
    gen_dirs: Sequence[tuple[str, str | os.PathLike]],
    classes: Sequence[str] | str | None = None,
    num_particles: int | None = None,
    jets_per_class: int = 50_000,
    truth_split: str = DEFAULT_TRUTH_SPLIT,
    seed: int = 0,
    recenter: bool = True,
) -> Comparison:
    """Read truth and generated files and cut them into equal-size, recentred per-class samples.

    Args:
        truth_dir: JetNet-format directory or ``"builtin"``.
        gen_dirs: (label, directory) of each generated sample, e.g. [("FPCD", "runs/quick/samples")].
        classes: classes to compare (default: those of the first generated directory).
        num_particles: 30 or 150 (default: the count every directory has files for).
        jets_per_class: n requested per sample (reduced to what the files hold; see module docstring).
        truth_split: ``"valid,test"``, ``"test"``, ``"all"``, ... (jetnet's split, per class).
        seed: seed of the permutation that cuts the truth into halves A and B.
        recenter: recentre both sides (see module docstring); only tests switch it off.

    Returns:
        A Comparison; ``notes`` says where n had to be reduced.

    Raises:
        FileNotFoundError / ValueError with a one-line message (missing directory or class file,
        mismatched particle counts, invalid files, too few jets).
    """
    if not gen_dirs:
        raise ValueError("no generated sample given (--gen DIR)")
    labels = [label for label, _ in gen_dirs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels must be unique, got {labels}")
    if jets_per_class < 1:
        raise ValueError(f"jets per class must be >= 1, got {jets_per_class}")
    splits = parse_splits(truth_split)
    truth_path = resolve_data_dir(truth_dir)
    gen_paths = [(label, resolve_data_dir(path)) for label, path in gen_dirs]
    if isinstance(classes, str):
        classes = parse_classes(classes)
    classes, num_particles = resolve_layout(truth_path, gen_paths, classes, num_particles)
    if read_manifest(truth_path) is not None:
        raise SampleSetError(
            f"--truth {truth_dir} is a generated sample set (it has a manifest.json), not truth data"
        )
    comparison = Comparison(
        str(truth_dir),
        ",".join(splits),
        num_particles,
        [(label, str(path)) for label, path in gen_dirs],
        recentred=recenter,
    )
    rng = np.random.default_rng(seed)
    for jet_class in classes:
        particles, jets = read_jet_class_file(truth_path, jet_class, num_particles)
        check_physical_kinematics(
            particles, jets, str(truth_path / class_file_name(jet_class, num_particles))
        )
        index = np.concatenate([jetnet_split_indices(len(jets), split) for split in splits])
        # The split is already a permutation, but a seeded shuffle keeps halves A and B random even for
        # a split list such as "valid,test" whose parts follow one another.
        index = index[rng.permutation(len(index))]
        generated = {label: read_jet_class_file(path, jet_class, num_particles) for label, path in gen_paths}
        n = min([jets_per_class, len(index) // 2, *(len(g[1]) for g in generated.values())])
        if n < MIN_JETS_PER_CLASS:
            sizes = ", ".join(f"'{label}' {len(g[1])}" for label, g in generated.items())
            raise ValueError(
                f"class {jet_class}: only {n} jets per sample (truth split {comparison.truth_split} has "
                f"{len(index)} jets, halved for the floor; generated: {sizes}); need >= {MIN_JETS_PER_CLASS}"
            )
        if n < jets_per_class:
            limits = [f"'{label}' has {len(g[1])} jets" for label, g in generated.items() if len(g[1]) == n]
            if len(index) // 2 == n:
                limits.insert(0, f"truth split {comparison.truth_split} has {len(index)} jets (two halves)")
            comparison.notes.append(
                f"class {jet_class}: {n} jets per sample instead of {jets_per_class} ({'; '.join(limits)})"
            )
        half_a, half_b = index[:n], index[n : 2 * n]
        comparison.classes[jet_class] = ClassComparison(
            jet_class,
            _sample(particles[half_a], jets[half_a], jet_class, recenter),
            _sample(particles[half_b], jets[half_b], jet_class, recenter),
            {label: _sample(p[:n], j[:n], jet_class, recenter) for label, (p, j) in generated.items()},
            len(index),
        )
    return comparison
