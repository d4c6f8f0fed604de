"""``gsgm reference``: the CPU fidelity reference recipe (generate, train, distill, sample, evaluate, plot).

One command reproduces BENCHMARKS.md's "Fidelity reference recipe" table on a laptop: it generates a
Pythia 8 + FastJet sample with a fixed seed (one stage per class), trains ``configs/fpcd_reference.json``,
distils it to 1 step, samples the held-out size at the teacher's steps and at 1 step, evaluates both
against held-out truth with the truth-vs-truth floor, and writes the table of model / floor ratios. Every
stage is a ``gsgm`` subcommand run as its own process; the chain's ledger (``stages-P.json``) and each
command's own checkpoints make the whole recipe resumable after kill -9.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gsgm.utils.cli import class_list, non_negative_int, positive_int, positive_int_or_list

NAME = "reference"
HELP = "the CPU fidelity reference recipe: generate, train, distill, sample, evaluate, plot (resumable)"
DESCRIPTION = """The fidelity reference recipe in one command (about an hour on 2 cores at 30 particles):

  1. generate 20,000 Pythia 8 + FastJet jets per class (30 and 150 particles, seed 20261202) into OUT/data
  2. train configs/fpcd_reference.json (30 particles) or configs/fpcd_reference150.json (150) into
     OUT/run-P
  3. distil the 64-step model to 1 step (30 particles; 6 stages of --distill-epochs 3 epochs)
  4. sample as many jets per class as the held-out truth half holds, at 64 steps and at 1 step
  5. evaluate both against the held-out jets (jetnet's valid + test split) with the truth-vs-truth floor
  6. plot, and write OUT/reference-P.md: every metric, its floor and the ratio model / floor

Progress lines give the stage, the elapsed time and an ETA; each stage's wall time goes into
OUT/stages-P.json. Running the same command again continues where it stopped (a killed training resumes
from its last epoch, a killed sampling from its last chunk); finished stages are skipped.

Examples:
    gsgm reference                                   # 30 particles into runs/reference
    gsgm reference --particles 150                   # the same at 150 particles (reuses OUT/data)
    gsgm reference --until train                     # stop after a stage (data-g ... summary)
    gsgm reference --data /scratch/jetnet --out runs/ref-jetnet   # on JetNet files instead
"""

#: the recipe's defaults (BENCHMARKS.md, "Fidelity reference recipe")
DEFAULT_JETS_PER_CLASS = 20_000
DEFAULT_SEED = 20261202
DEFAULT_CONFIGS = {30: "configs/fpcd_reference.json", 150: "configs/fpcd_reference150.json"}
TRUTH_SPLIT = "valid,test"
# the targets: every W1 within these factors of its floor
TARGETS = {"teacher": 1.5, "one_step": 2.0}
# Nominal seconds per stage on 2 cores at the defaults (measured 2026-12, BENCHMARKS.md), for the ETA only.
NOMINAL_S = {
    30: {
        "data": 190,
        "train": 1050,
        "distill": 2000,
        "sample": 300,
        "sample-1": 20,
        "evaluate": 300,
        "plot": 60,
    },
    150: {"data": 190, "train": 1970, "sample": 1200, "evaluate": 600, "plot": 90},
}


@dataclass(frozen=True)
class RecipeSettings:
    """What a reference recipe run is: paths, sizes and seeds (from the command line)."""

    out: Path
    particles: int = 30
    classes: tuple[str, ...] = ("g", "q", "t", "w", "z")
    jets_per_class: int = DEFAULT_JETS_PER_CLASS
    seed: int = DEFAULT_SEED
    config: str | None = None
    data: str | None = None
    epochs: int | None = None
    distill_epochs: int | list[int] = 3
    steps: int | None = None
    eval_jets: int | None = None
    workers: int | None = None

    @property
    def data_dir(self) -> str:
        return self.data if self.data is not None else str(self.out / "data")

    @property
    def run_dir(self) -> Path:
        return self.out / f"run-{self.particles}"

    @property
    def config_path(self) -> str:
        return self.config if self.config is not None else DEFAULT_CONFIGS[self.particles]

    @property
    def training_config(self) -> Path:
        """The config the recipe trains with: ``config_path`` with ``data.classes`` set to ``classes``."""
        return self.out / f"config-{self.particles}.json"

    @property
    def distils(self) -> bool:
        """Distillation to 1 step is part of the 30-particle recipe (the issue's 150 table is 64 steps)."""
        return self.particles == 30

    @property
    def jets_to_sample(self) -> int:
        """The held-out half's size (n of the evaluation), unless --eval-jets says otherwise.

        The held-out jets are jetnet's valid + test split of the generated file (30 %), halved for the
        floor, counted with the split function the evaluation uses.
        """
        if self.eval_jets is not None:
            return self.eval_jets
        from gsgm.data.loading import jetnet_split_indices

        held_out = sum(
            len(jetnet_split_indices(self.jets_per_class, split)) for split in TRUTH_SPLIT.split(",")
        )
        return max(1, held_out // 2)

    def sample_dir(self, one_step: bool) -> Path:
        return self.run_dir / ("samples-1" if one_step else "samples")


def _class_files_complete(data_dir: str, jet_class: str, jets: int) -> bool:
    """Whether ``data_dir`` has both particle counts of ``jet_class`` with ``jets`` jets (else False).

    Raises:
        ValueError: the files exist with another number of jets (another recipe's data).
    """
    import h5py

    from gsgm.data.jetnet_format import class_file_name

    sizes = []
    for count in (30, 150):
        path = Path(data_dir) / class_file_name(jet_class, count)
        if not path.exists():
            return False
        with h5py.File(path, "r") as handle:
            sizes.append((path, len(handle["jet_features"])))
    for path, size in sizes:
        if size != jets:
            raise ValueError(
                f"{path} holds {size} jets, not --jets-per-class {jets}: use another --out or the same size"
            )
    return True


def _labels(settings: RecipeSettings) -> list[tuple[str, Path]]:
    labels = [(f"FPCD {settings.steps} steps" if settings.steps else "FPCD", settings.sample_dir(False))]
    if settings.distils:
        labels.append(("FPCD 1 step (distilled)", settings.sample_dir(True)))
    return labels


def _gen_arguments(settings: RecipeSettings) -> list[str]:
    arguments = []
    for label, directory in _labels(settings):
        arguments += ["--gen", str(directory), "--label", label]
    return arguments


def _gsgm(*words: str, **options: object) -> list[str]:
    """``gsgm WORDS --option value ...``: underscores in option names become dashes, True is a bare flag,
    a list is comma-separated (``--epochs-per-stage 1,1,2``)."""
    argv = ["gsgm", *words]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, list):
            value = ",".join(str(item) for item in value)
        argv += [flag] if value is True else [flag, str(value)]
    return argv


def reference_stages(settings: RecipeSettings):
    """The recipe's stages for ``settings``, in order (:class:`gsgm.utils.stages.Stage`)."""
    from gsgm.utils.stages import Stage

    nominal = NOMINAL_S[settings.particles]
    jets = settings.jets_per_class
    stages = []
    if settings.data is None:
        workers = {} if settings.workers is None else {"workers": settings.workers}
        for jet_class in settings.classes:
            argv = _gsgm("make-data", classes=jet_class, jets_per_class=jets, particles="30,150",
                         seed=settings.seed, out=settings.data_dir, **workers)  # fmt: skip
            stages.append(
                Stage(
                    f"data-{jet_class}",
                    argv,
                    nominal["data"] * jets / DEFAULT_JETS_PER_CLASS,
                    done=lambda c=jet_class: _class_files_complete(settings.data_dir, c, jets),
                    description=f"{jets} Pythia jets of class {jet_class}",
                )
            )
    classes = ",".join(settings.classes)
    epochs = {} if settings.epochs is None else {"epochs": settings.epochs}
    train = _gsgm("train", config=settings.training_config, data=settings.data_dir,
                  particles=settings.particles, out=settings.run_dir, **epochs)  # fmt: skip
    stages.append(Stage("train", train, nominal["train"], description=f"training into {settings.run_dir}"))
    teacher_steps = {} if settings.steps is None else {"steps": settings.steps}
    if settings.distils:
        start = {} if settings.steps is None else {"start_steps": settings.steps}
        distill = _gsgm(
            "distill", run=settings.run_dir, until=1, epochs_per_stage=settings.distill_epochs, **start
        )
        stages.append(
            Stage("distill", distill, nominal["distill"], description="progressive distillation to 1 step")
        )
    per_class = settings.jets_to_sample
    for one_step in (False, True) if settings.distils else (False,):
        out = settings.sample_dir(one_step)
        steps = {"steps": 1} if one_step else teacher_steps
        name = "sample-1" if one_step else "sample"
        argv = _gsgm("sample", run=settings.run_dir, per_class=per_class, classes=classes, out=out, seed=0,
                     no_progress=True, **steps)  # fmt: skip
        stages.append(
            Stage(
                name,
                argv,
                nominal[name],
                done=lambda out=out: (out / "manifest.json").exists(),
                description=f"{per_class} jets per class at {'1 step' if one_step else 'the teacher steps'}",
            )
        )
    evaluation = settings.out / f"evaluation-{settings.particles}"
    comparison = _gsgm(truth=settings.data_dir, truth_split=TRUTH_SPLIT)[1:] + _gen_arguments(settings)
    comparison += _gsgm(classes=classes, particles=settings.particles, jets_per_class=per_class)[1:]
    evaluate = _gsgm("evaluate", "jets", *comparison, out=evaluation,
                     feature_cache=settings.out / "feature-cache", no_progress=True)  # fmt: skip
    stages.append(
        Stage(
            "evaluate",
            evaluate,
            nominal["evaluate"],
            done=lambda: (evaluation / "metrics.json").exists(),
            description="metrics against the held-out half, with the floor",
        )
    )
    plots = settings.out / f"plots-{settings.particles}"
    stages.append(
        Stage("plot", _gsgm("plot", "jets", *comparison, out=plots, quiet=True), nominal["plot"] * 0.8)
    )
    stages.append(
        Stage(
            "plot-training", _gsgm("plot", "training", run=settings.run_dir, out=plots), nominal["plot"] * 0.2
        )
    )
    return stages


def write_training_config(settings: RecipeSettings) -> Path:
    """Write ``settings.training_config`` (the chosen config restricted to the recipe's classes), once.

    Raises:
        ValueError: the config is invalid (its file and key named), or the recipe directory already holds
            a different training config (another recipe's run: use another --out).
    """
    import json

    from gsgm.config import load_config
    from gsgm.utils.atomic import write_json_atomic

    source = Path(settings.config_path)
    try:
        payload = json.loads(source.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"--config {source}: not a readable JSON config ({error})") from None
    payload.setdefault("data", {})["classes"] = list(settings.classes)
    target = settings.training_config
    if target.exists():
        if json.loads(target.read_text()) != payload:
            raise ValueError(
                f"{target} holds another training config than --config {source} with --classes "
                f"{','.join(settings.classes)}: use another --out, or the options of the first run"
            )
        return target
    write_json_atomic(target, payload)
    try:
        load_config(target)  # validated before any stage runs
    except Exception:
        target.unlink()
        raise
    return target


def run_gsgm(argv: Sequence[str]) -> int:
    """Run ``gsgm ARGS`` (``argv[0]`` is ``"gsgm"``) as a child process of this interpreter; its status."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    return subprocess.call([sys.executable, "-m", "gsgm.cli", *argv[1:]], env=env)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=Path("runs/reference"), help="recipe directory (default runs/reference)"
    )
    parser.add_argument("--particles", type=int, choices=(30, 150), default=30, help="30 (default) or 150")
    parser.add_argument(
        "--classes", type=class_list, default="g,q,t,w,z", help="comma-separated classes (default all)"
    )
    parser.add_argument(
        "--jets-per-class",
        type=positive_int,
        default=DEFAULT_JETS_PER_CLASS,
        help=f"jets generated per class (default {DEFAULT_JETS_PER_CLASS}; 70%% train, 30%% held out)",
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=DEFAULT_SEED,
        help=f"generation seed (default {DEFAULT_SEED})",
    )
    parser.add_argument("--config", help="config of the training (default configs/fpcd_reference[150].json)")
    parser.add_argument(
        "--data", help="existing JetNet-format directory instead of generating (skips the data stages)"
    )
    parser.add_argument("--epochs", type=positive_int, help="override the config's training.epochs")
    parser.add_argument(
        "--distill-epochs",
        type=positive_int_or_list,
        default=3,
        help="epochs per distillation stage, or one count per stage (6 for 64 -> 1), e.g. 1,1,2,3,4,7 "
        "(default 3)",
    )
    parser.add_argument(
        "--steps", type=positive_int, help="teacher sampling steps (default: the config's, 64)"
    )
    parser.add_argument(
        "--eval-jets",
        type=positive_int,
        help="jets per class to sample and evaluate (default: the held-out half)",
    )
    parser.add_argument(
        "--workers", type=positive_int, help="generation processes (default: number of cores)"
    )
    parser.add_argument(
        "--until",
        help="stop after this stage: data-<class>, train, distill, sample, sample-1, evaluate, plot, ...",
    )


def run(args: argparse.Namespace) -> int:
    from gsgm.data.jetnet_format import parse_classes
    from gsgm.evaluation.report import format_ratio_table
    from gsgm.utils.atomic import write_text_atomic
    from gsgm.utils.stages import format_duration, run_stages

    settings = RecipeSettings(
        out=args.out,
        particles=args.particles,
        classes=tuple(parse_classes(args.classes)),
        jets_per_class=args.jets_per_class,
        seed=args.seed,
        config=args.config,
        data=args.data,
        epochs=args.epochs,
        distill_epochs=args.distill_epochs,
        steps=args.steps,
        eval_jets=args.eval_jets,
        workers=args.workers,
    )
    if settings.data is not None and not Path(settings.data).is_dir():
        raise ValueError(f"--data {settings.data} is not a directory")
    if settings.out.exists() and not settings.out.is_dir():
        raise ValueError(f"--out {settings.out} exists and is not a directory")
    settings.out.mkdir(parents=True, exist_ok=True)
    write_training_config(settings)
    stages = reference_stages(settings)
    ledger = settings.out / f"stages-{settings.particles}.json"
    finished = run_stages(
        stages, ledger, run_gsgm, log=lambda line: print(f"reference: {line}", flush=True), until=args.until
    )
    if args.until is not None and args.until != stages[-1].name:
        return 0
    import json

    report = json.loads((settings.out / f"evaluation-{settings.particles}" / "metrics.json").read_text())
    targets = {
        label: TARGETS["one_step" if "1 step" in label else "teacher"] for label, _ in _labels(settings)
    }
    # 0 s: the stage's outputs were found complete (data reused from another recipe run)
    walls = ", ".join(
        f"{name} {format_duration(seconds) if seconds > 0 else 'reused'}"
        for name, seconds in finished.items()
    )
    text = "\n".join(
        [
            f"# Reference recipe, {settings.particles} particles",
            "",
            f"`gsgm reference --particles {settings.particles} --out {settings.out}`:"
            f" {settings.jets_per_class} jets per class generated with seed {settings.seed}, config "
            f"`{settings.config_path}`, evaluated on the held-out split `{TRUTH_SPLIT}`.",
            "",
            *format_ratio_table(report, targets),
            "",
            f"Stage wall times: {walls}.",
        ]
    )
    summary = settings.out / f"reference-{settings.particles}.md"
    write_text_atomic(summary, text + "\n")
    print(text)
    print(f"reference: summary in {summary}")
    return 0
