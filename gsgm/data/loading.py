"""Load JetNet-format jets from a local directory, split them exactly as the ``jetnet`` package does.

Reading never touches the network: files are looked up in the given directory and read with
:func:`gsgm.data.jetnet_format.read_jetnet_file`. Downloading is a separate, explicit step
(:func:`download_with_jetnet`, exposed as ``--download`` by the scripts), because ``jetnet``'s own
loader asks Zenodo for a checksum even when the files are already present and so fails offline.

The directory layout is JetNet's: one file per class, ``g.hdf5 ... z.hdf5`` (30 particles) and
``g150.hdf5 ... z150.hdf5`` (150 particles). ``"builtin"`` names the small sample shipped with gsgm.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from gsgm.data.jetnet_format import (
    JET_CLASSES,
    PARTICLE_COUNTS,
    JetNetFormatError,
    JetSample,
    check_class,
    check_physical_kinematics,
    class_file_name,
    parse_classes,
    read_jetnet_file,
    write_jetnet_file,
)

SPLITS: tuple[str, ...] = ("train", "valid", "test", "all")
# jetnet 0.2.5 defaults (JetNet.__init__/getData): split_fraction [0.7, 0.15, 0.15], seed 42.
DEFAULT_SPLIT_FRACTION: tuple[float, float, float] = (0.7, 0.15, 0.15)
JETNET_SEED = 42
# Zenodo records of the JetNet files, as in jetnet 0.2.5 ``JetNet._ZENODO_RECORD_IDS``.
ZENODO_RECORDS: dict[int, int] = {30: 6975118, 150: 6975117}
BUILTIN = "builtin"
#: Environment variable naming the JetNet directory used when no data directory is given.
ENV_DATA = "GSGM_DATA"
#: Where JetNet is looked for when neither ``--data`` nor ``$GSGM_DATA`` is given (relative to the
#: working directory, i.e. the checkout for scripts/ and the Slurm templates).
DEFAULT_DATA_DIR = "data/jetnet"


class MissingDataError(FileNotFoundError):
    """JetNet files (or their directory) are missing; the message says where to put them and how to get them.

    Attributes:
        directory: the data directory that was searched.
        missing: the missing file paths.
    """

    def __init__(self, message: str, directory: Path, missing: Sequence[Path]):
        super().__init__(message)
        self.directory = directory
        self.missing = list(missing)

    def __str__(self) -> str:
        # FileNotFoundError's default __str__ would print the errno form; we want the plain message.
        return str(self.args[0])


def builtin_data_dir() -> Path:
    """The sample shipped with gsgm: ``gsgm/data/builtin/`` (2000 Pythia jets per class, P = 30 and 150)."""
    return Path(__file__).resolve().parent / "builtin"


def default_data_spec(environ: Mapping[str, str] | None = None) -> str:
    """The data directory used when none is given: ``$GSGM_DATA``, else ``data/jetnet``."""
    environ = os.environ if environ is None else environ
    return environ.get(ENV_DATA) or DEFAULT_DATA_DIR


def resolve_data_dir(spec: str | os.PathLike) -> Path:
    """Turn a user's data-directory argument into a path: ``"builtin"`` -> :func:`builtin_data_dir`."""
    if str(spec) == BUILTIN:
        return builtin_data_dir()
    return Path(spec).expanduser()


def jetnet_split_indices(
    n: int,
    split: str,
    split_fraction: Sequence[float] = DEFAULT_SPLIT_FRACTION,
    seed: int = JETNET_SEED,
) -> np.ndarray:
    """Indices of the jets in ``split`` for a file of ``n`` jets, exactly as jetnet 0.2.5 selects them.

    Mirrors ``jetnet.datasets.JetNet.getData`` (which calls ``jetnet.datasets.utils.getSplitting``):
    the cuts are ``(cumsum([0, *split_fraction]) * n).astype(int)`` (truncation, not rounding), and
    the jets are ``permutation[lcut:rcut]`` of ``numpy.random.default_rng(seed).permutation(n)``.
    ``"all"`` is the whole permutation, so it is shuffled too, like jetnet's ``split="all"``.

    JetNet.getData permutes the concatenation of all requested classes; this function is applied to
    one class file at a time, which equals ``JetNet.getData(jet_type=<that class>, ...)``.

    Args:
        n: number of jets in the file.
        split: one of ``"train"``, ``"valid"``, ``"test"``, ``"all"``.
        split_fraction: fractions of train, valid, test (sum <= 1).
        seed: seed of the permutation (jetnet's default 42).

    Returns:
        [n_split] int64 indices into the file, in jetnet's order.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits are {', '.join(SPLITS)}")
    if split == "all":
        lcut, rcut = 0, n
    else:
        fractions = np.asarray(split_fraction, dtype=np.float64)
        if fractions.shape != (3,) or (fractions < 0).any() or np.sum(fractions) > 1.0:
            raise ValueError(
                f"split_fraction must be 3 non-negative numbers with sum <= 1, got {split_fraction}"
            )
        # Same expression as getSplitting so that float rounding of the cumulative sum is identical.
        cuts = (np.cumsum(np.insert(fractions, 0, 0)) * n).astype(int)
        index = SPLITS.index(split)
        lcut, rcut = int(cuts[index]), int(cuts[index + 1])
    permutation = np.random.default_rng(seed).permutation(n)
    return permutation[lcut:rcut]


def class_file_path(directory: str | os.PathLike, jet_class: str, num_particles: int) -> Path:
    """``directory / class_file_name(jet_class, num_particles)``, e.g. ``DIR/t150.hdf5``."""
    return resolve_data_dir(directory) / class_file_name(jet_class, num_particles)


def available_classes(directory: str | os.PathLike, num_particles: int) -> list[str]:
    """Classes (in JET_CLASSES order) whose file for ``num_particles`` exists in ``directory``."""
    return [c for c in JET_CLASSES if class_file_path(directory, c, num_particles).is_file()]


def detect_num_particles(directory: str | os.PathLike, classes: Sequence[str] | None = None) -> int:
    """Guess which particle count (30 or 150) to read from ``directory``.

    The first count (30 preferred) for which every requested class (or, with ``classes=None``, at least
    one class) has a file; failing that, the first count with any file at all, so that the caller's
    load then reports exactly which files are missing. With no file at all, 30.
    """
    for count in PARTICLE_COUNTS:
        present = available_classes(directory, count)
        if present and (classes is None or all(c in present for c in classes)):
            return count
    for count in PARTICLE_COUNTS:
        if available_classes(directory, count):
            return count
    return PARTICLE_COUNTS[0]


def missing_data_message(directory: Path, classes: Sequence[str], num_particles: int) -> str:
    """The help text of :class:`MissingDataError` for ``classes`` at ``num_particles`` in ``directory``."""
    names = [class_file_name(c, num_particles) for c in classes]
    missing = [directory / name for name in names if not (directory / name).is_file()]
    record = ZENODO_RECORDS[num_particles]
    lines = []
    if directory.exists() and not directory.is_dir():
        lines.append(f"JetNet data directory is not a directory: {directory}")
    elif not directory.is_dir():
        lines.append(f"JetNet data directory does not exist: {directory}")
    else:
        lines.append(f"JetNet data missing in {directory}:")
        lines.extend(f"  {path}" for path in missing)
    lines += [
        f"Put one file per jet class in {directory}, named exactly: {', '.join(names)}",
        "(JetNet names: g.hdf5 ... z.hdf5 for 30 particles, g150.hdf5 ... z150.hdf5 for 150).",
        "To get them:",
        f"  - download JetNet{num_particles} (Zenodo record {record}, https://zenodo.org/record/{record}) "
        f"into that directory (JetNet30 is record {ZENODO_RECORDS[30]}, "
        f"JetNet150 record {ZENODO_RECORDS[150]});",
        "  - or, with internet access, rerun with --download to fetch them through the jetnet package",
        "    (gsgm.data.loading.download_with_jetnet);",
        f"  - or generate your own: python scripts/make_jets.py --classes {','.join(classes)} "
        f"--particles {num_particles} --out {directory}",
        f"Without --data, gsgm looks in ${ENV_DATA}, else in ./{DEFAULT_DATA_DIR}.",
        f"To train on the shipped stand-in instead (2000 Pythia jets per class, not JetNet), pass "
        f"--data {BUILTIN} ({builtin_data_dir()}).",
    ]
    return "\n".join(lines)


def check_files(directory: str | os.PathLike, classes: Sequence[str], num_particles: int) -> list[Path]:
    """Paths of the files of ``classes``; raise :class:`MissingDataError` listing every missing one."""
    directory = resolve_data_dir(directory)
    for jet_class in classes:
        check_class(jet_class)
    paths = [directory / class_file_name(c, num_particles) for c in classes]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise MissingDataError(missing_data_message(directory, classes, num_particles), directory, missing)
    return paths


def load_class(
    directory: str | os.PathLike,
    jet_class: str,
    num_particles: int,
    split: str = "all",
    split_fraction: Sequence[float] = DEFAULT_SPLIT_FRACTION,
    seed: int = JETNET_SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """Read one class file from ``directory`` and return the jets of ``split`` (never uses the network).

    Equivalent to ``jetnet.datasets.JetNet.getData(jet_type=jet_class, num_particles=num_particles,
    split=split, jet_features=["pt", "eta", "mass", "num_particles"])`` on the same file, without
    jetnet's Zenodo checksum request.

    Returns:
        (particle_features [n, P, 4] float32 (eta_rel, phi_rel, pt_rel, mask),
        jet_features [n, 4] float32 (pt [GeV], eta, mass [GeV], num_particles)), P = num_particles.

    Raises:
        MissingDataError if the file is missing, JetNetFormatError if it is not valid JetNet data
        or holds negative pT, mass or pt_rel.
    """
    (path,) = check_files(directory, [jet_class], num_particles)
    particle_features, jet_features = read_jetnet_file(path, expected_particles=num_particles)
    check_physical_kinematics(particle_features, jet_features, str(path))
    if not particle_features[..., 3].any():
        # said here, where the file is known: the preprocessing would otherwise skip the class and a
        # later step would ask to "refit" it
        raise JetNetFormatError(
            f"{path}: all {len(jet_features)} jets are empty (no particle has mask 1): class {jet_class} "
            "has nothing to train on or compare with"
        )
    index = jetnet_split_indices(len(jet_features), split, split_fraction, seed)
    return particle_features[index], jet_features[index]


def load_jets(
    directory: str | os.PathLike,
    classes: str | Sequence[str],
    num_particles: int,
    split: str = "all",
    max_jets_per_class: int | None = None,
    split_fraction: Sequence[float] = DEFAULT_SPLIT_FRACTION,
    seed: int = JETNET_SEED,
) -> JetSample:
    """Load several classes from ``directory`` and concatenate them (in the order given).

    Each class is split on its own (see :func:`load_class`), so the split of a class does not depend on
    which other classes are loaded; ``max_jets_per_class`` keeps the first jets of each class's split
    (a random subset, because the split is a permutation), so train/valid/test stay disjoint.

    Args:
        directory: data directory or ``"builtin"``.
        classes: ``"g,q,t"`` or a list of classes.
        num_particles: 30 or 150 (selects ``g.hdf5`` or ``g150.hdf5``).
        split: ``"train"``, ``"valid"``, ``"test"`` or ``"all"``.
        max_jets_per_class: at most this many jets per class (None: all).

    Returns:
        JetSample with particles [N, P, 4], jets [N, 4] and labels [N] = index into JET_CLASSES.

    Raises:
        MissingDataError listing every missing file (checked before anything is read).
    """
    classes = parse_classes(classes)
    if max_jets_per_class is not None and max_jets_per_class < 1:
        raise ValueError(f"max_jets_per_class must be >= 1 or None, got {max_jets_per_class}")
    check_files(directory, classes, num_particles)  # one error listing all missing files, before any I/O
    particles, jets, labels = [], [], []
    for jet_class in classes:
        pf, jf = load_class(directory, jet_class, num_particles, split, split_fraction, seed)
        if max_jets_per_class is not None:
            pf, jf = pf[:max_jets_per_class], jf[:max_jets_per_class]
        particles.append(pf)
        jets.append(jf)
        labels.append(np.full(len(jf), JET_CLASSES.index(jet_class), dtype=np.int32))
    return JetSample(np.concatenate(particles), np.concatenate(jets), np.concatenate(labels))


def download_with_jetnet(
    directory: str | os.PathLike, classes: str | Sequence[str], num_particles: int
) -> Path:
    """Fetch JetNet files from Zenodo with ``jetnet`` (needs internet) into ``directory`` as ``g.hdf5`` etc.

    Classes whose file already exists and is valid are skipped (no network access for them). For the
    others ``jetnet.datasets.JetNet.getData(jet_type=c, data_dir=directory, num_particles=...,
    split="all", download=True)`` downloads ``c.hdf5`` / ``c150.hdf5`` into ``directory`` (jetnet uses the
    same names and checks the md5 sum); the file is then validated. Should jetnet have stored the file
    elsewhere, the returned arrays are written as our file instead, after undoing jetnet's ``"all"``
    shuffle so the jet order (and therefore every split) is the original file's.

    Returns:
        The directory.

    Raises:
        JetNetFormatError if a downloaded file is not valid JetNet data; jetnet's own errors (e.g. no
        internet: a requests ConnectionError) pass through.
    """
    classes = parse_classes(classes)
    directory = resolve_data_dir(directory)
    if num_particles not in PARTICLE_COUNTS:
        raise ValueError(f"num_particles must be one of {PARTICLE_COUNTS}, got {num_particles}")
    # Imported here: jetnet imports torch (seconds), and reading local files must not need it.
    import jetnet
    from jetnet.datasets import JetNet

    directory.mkdir(parents=True, exist_ok=True)
    for jet_class in classes:
        path = directory / class_file_name(jet_class, num_particles)
        if path.is_file():
            try:
                read_jetnet_file(path, expected_particles=num_particles)
                continue
            except (JetNetFormatError, OSError):
                pass  # fetched again below; jetnet also replaces a file whose md5 sum is wrong
        particle_data, jet_data = JetNet.getData(
            jet_type=jet_class,
            data_dir=str(directory),
            particle_features=["etarel", "phirel", "ptrel", "mask"],
            jet_features=["pt", "eta", "mass", "num_particles"],
            num_particles=num_particles,
            split="all",
            seed=JETNET_SEED,
            download=True,
        )
        if path.is_file():
            read_jetnet_file(path, expected_particles=num_particles)
            continue
        # getData(split="all") returns data[permutation]; put each jet back at its original position.
        order = jetnet_split_indices(len(jet_data), "all", seed=JETNET_SEED)
        pf = np.empty_like(np.asarray(particle_data, dtype=np.float32))
        jf = np.empty_like(np.asarray(jet_data, dtype=np.float32))
        pf[order] = particle_data
        jf[order] = jet_data
        write_jetnet_file(
            path,
            pf,
            jf,
            attributes={
                "source": f"JetNet{num_particles}, Zenodo record {ZENODO_RECORDS[num_particles]}, "
                "via jetnet.datasets.JetNet.getData",
                "jetnet_version": getattr(jetnet, "__version__", "unknown"),
            },
        )
    return directory
