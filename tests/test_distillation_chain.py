"""Distillation stages end to end: chain 8 -> 4 -> 2 -> 1, network evaluations, resume, stage selection."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import tensorflow as tf

from gsgm.config import load_config
from gsgm.data.jetnet_format import JET_CLASSES, read_jetnet_file, validate_arrays
from gsgm.families.fpcd import FPCD, build_distillation_model, build_model, load_trained_model, train
from gsgm.generation.jets import generate_jets
from gsgm.generation.sample_sets import chunk_seed
from gsgm.training import loop as trainer_module
from gsgm.training.distill import (
    DistillationSetupError,
    distill_chain,
    resolve_run_for_steps,
    stage_dir,
)
from gsgm.training.distillation_model import DistillationModel
from gsgm.training.fpcd_model import FPCDModel
from gsgm.training.optim import make_optimizer
from gsgm.training.run_dir import RunDirectory

REPO = Path(__file__).resolve().parents[1]
STAGES = (4, 2, 1)
EPOCHS = 2


def tiny_config():
    cfg = load_config(REPO / "configs" / "quick.json")
    cfg.data.classes = ["t", "w"]
    cfg.jet_net.num_blocks, cfg.jet_net.width = 1, 16
    cfg.particle_net.embed_dim, cfg.particle_net.num_transformer_blocks = 8, 1
    cfg.particle_net.num_heads, cfg.particle_net.ffn_dim, cfg.particle_net.output_hidden_dim = 2, 16, 8
    cfg.embedding.fourier_features, cfg.embedding.time_dims, cfg.embedding.cond_dim = 4, [8, 8], 8
    cfg.training.batch_size, cfg.training.epochs, cfg.training.ema_decay = 16, 1, 0.9
    cfg.training.seed = 11
    cfg.sampling.num_steps = 8
    return cfg


def network_weights(path: Path, cfg=None) -> list[np.ndarray]:
    """Raw and EMA network weights stored in a weights file, loaded into a plain FPCDModel."""
    cfg = cfg or tiny_config()
    model = build_model(cfg, cfg.data.num_particles, seed=0)
    model.load_weights(path)
    nets = (model.jet_net, model.particle_net, model.ema_jet_net, model.ema_particle_net)
    return [np.asarray(w) for net in nets for w in net.get_weights()]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("distill") / "base"
    train(tiny_config(), data="builtin", out=out, max_jets_per_class=32, verbose=0)
    return out


@pytest.fixture(scope="module")
def chain(base_run) -> list[Path]:
    """The base run distilled 8 -> 4 -> 2 -> 1 in one call (2 epochs per stage)."""
    return distill_chain(FPCD, base_run, until=1, epochs_per_stage=EPOCHS, verbose=0)


def test_chain_writes_one_loadable_run_per_stage(base_run, chain):
    assert chain == [stage_dir(base_run, n) for n in STAGES]
    assert [p.name for p in chain] == ["steps-004", "steps-002", "steps-001"]
    base_preprocessing = (base_run / "preprocessing.json").read_bytes()
    teachers = [".", "distill/steps-004", "distill/steps-002"]
    for num_steps, path, teacher in zip(STAGES, chain, teachers, strict=True):
        run = RunDirectory(path).require()
        cfg = load_config(run.config_path)
        assert cfg.sampling.num_steps == num_steps and cfg.training.epochs == EPOCHS
        assert run.preprocessing_path.read_bytes() == base_preprocessing
        history = run.read_history()
        assert len(history) == EPOCHS and all(np.isfinite(r["val_loss"]) for r in history)
        distillation = run.read_metadata()["distillation"]
        assert distillation["num_steps"] == num_steps and distillation["teacher_steps"] == 2 * num_steps
        assert distillation["teacher"] == teacher
        assert run.read_metadata()["data_sha256"] == RunDirectory(base_run).read_metadata()["data_sha256"]
    # Training moved every student away from its teacher (whose EMA weights it started from).
    for teacher, student in zip([base_run, *chain[:-1]], chain, strict=True):
        pairs = zip(
            network_weights(RunDirectory(teacher).inference_weights())[-20:],
            network_weights(RunDirectory(student).inference_weights())[-20:],
            strict=True,
        )
        assert any(not np.allclose(a, b) for a, b in pairs), student


def counting(denoiser, counter: tf.Variable):
    """The denoiser, counting the jets it evaluates (batch rows summed over calls) in a variable.

    A variable, because the sampler's loop is compiled: a Python counter would count traces only. Rows
    rather than calls, so that the count per jet does not depend on how the sampler batches the jets."""

    def wrapped(z, t, **conditions):
        counter.assign_add(tf.shape(z)[0])
        return denoiser(z, t, **conditions)

    return wrapped


@pytest.mark.parametrize("num_steps", STAGES)
def test_each_stage_samples_valid_jets_with_its_number_of_evaluations(chain, base_run, num_steps, tmp_path):
    model, preprocessor, cfg = load_trained_model(resolve_run_for_steps(base_run, num_steps))
    assert cfg.sampling.num_steps == num_steps
    jet_calls, particle_calls = tf.Variable(0), tf.Variable(0)
    model.jet_denoiser = counting(model.jet_denoiser, jet_calls)
    model.particle_denoiser = counting(model.particle_denoiser, particle_calls)
    generated = generate_jets(
        model, preprocessor, cfg, jets_per_class=10, classes=["t", "w"], num_steps=cfg.sampling.num_steps
    )
    # Every one of the 20 jets went through exactly num_steps jet-net and num_steps particle-net calls.
    assert int(jet_calls.numpy()) == 20 * num_steps
    assert int(particle_calls.numpy()) == 20 * num_steps
    for particles, jets in generated.values():
        assert particles.shape == (10, 30, 4) and jets.shape == (10, 4)
        validate_arrays(particles, jets, expected_particles=30)


def test_student_starts_as_the_teacher_and_saves_as_an_fpcd_model(base_run, tmp_path):
    teacher, _, cfg = load_trained_model(base_run)
    student = build_distillation_model(cfg, teacher, num_steps=4, seed=5)
    nets = [student.jet_net, student.ema_jet_net, student.particle_net, student.ema_particle_net]
    sources = [teacher.ema_jet_net, teacher.ema_jet_net, teacher.ema_particle_net, teacher.ema_particle_net]
    for net, source in zip(nets, sources, strict=True):
        for a, b in zip(net.get_weights(), source.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    assert student.jet_net.trainable_variables and not student.ema_jet_net.trainable_variables

    # Same weight-file layout as a plain FPCDModel: no teacher inside, loadable by load_trained_model.
    def datasets(path):
        names = []
        with h5py.File(path) as handle:
            handle.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        return sorted(names)

    student.save_weights(tmp_path / "student.weights.h5")
    teacher.save_weights(tmp_path / "teacher.weights.h5")
    assert datasets(tmp_path / "student.weights.h5") == datasets(tmp_path / "teacher.weights.h5")

    # train_step / test_step go through the distillation loss (a refactor of FPCDModel must not bypass it).
    calls = []
    original = DistillationModel.compute_losses

    def spy(self, *args, **kwargs):
        calls.append(kwargs.get("training"))
        return original(self, *args, **kwargs)

    assert DistillationModel.compute_losses is not FPCDModel.compute_losses
    student.compute_losses = spy.__get__(student)
    student.compile(optimizer=make_optimizer(cfg.training, steps_per_epoch=10))
    batch = {
        "particles": tf.zeros([3, 30, 3]),
        "jets": tf.zeros([3, 4]),
        "class_onehot": tf.one_hot([2, 3, 2], 5),
        "mask": tf.ones([3, 30, 1]),
    }
    assert np.isfinite(float(student.train_step(batch)["loss"]))
    assert np.isfinite(float(student.test_step(batch)["loss"]))
    assert calls == [True, False]  # training: raw networks; validation: EMA networks


def test_resume_in_the_middle_of_a_stage_matches_the_uninterrupted_chain(
    base_run, chain, tmp_path, monkeypatch
):
    run = tmp_path / "copy"
    shutil.copytree(base_run, run, ignore=shutil.ignore_patterns("distill"))
    real_save = trainer_module.save_checkpoint

    def save_then_die(stage, model, state, epoch):
        path = real_save(stage, model, state, epoch)
        if stage.path.name == "steps-002" and epoch == 0:
            raise KeyboardInterrupt("simulated kill after the first epoch of the 2-step stage")
        return path

    monkeypatch.setattr(trainer_module, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        distill_chain(FPCD, run, until=1, epochs_per_stage=EPOCHS, verbose=0)
    monkeypatch.setattr(trainer_module, "save_checkpoint", real_save)
    assert RunDirectory(stage_dir(run, 2)).latest_checkpoint().name == "epoch-0000"
    assert not stage_dir(run, 1).exists()
    with pytest.raises(ValueError, match="not finished .epoch 1 of 2"):
        resolve_run_for_steps(run, 2)
    finished_first = (stage_dir(run, 4) / "history.csv").stat().st_mtime_ns
    (epoch_zero,) = RunDirectory(stage_dir(run, 2)).read_history()

    distill_chain(FPCD, run, until=1, verbose=0)  # the same command again: start and epochs from chain.json
    assert (stage_dir(run, 4) / "history.csv").stat().st_mtime_ns == finished_first  # not retrained
    for num_steps in (2, 1):
        resumed = RunDirectory(stage_dir(run, num_steps))
        straight = RunDirectory(stage_dir(base_run, num_steps))
        assert [r["epoch"] for r in resumed.read_history()] == [0.0, 1.0]
        if num_steps == 2:  # epoch 0 was kept, not trained again (its wall time would differ)
            assert resumed.read_history()[0] == epoch_zero
        pairs = zip(
            network_weights(resumed.latest_checkpoint() / "model.weights.h5"),
            network_weights(straight.latest_checkpoint() / "model.weights.h5"),
            strict=True,
        )
        for a, b in pairs:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    with pytest.raises(DistillationSetupError, match="start steps 8, not 16"):
        distill_chain(FPCD, run, until=1, start_steps=16, verbose=0)
    with pytest.raises(DistillationSetupError, match="power of two"):
        distill_chain(FPCD, tmp_path / "copy", until=3, verbose=0)


def test_zero_epochs_or_steps_are_errors_not_the_defaults(base_run, tmp_path):
    """distill_chain's None means "the run's default"; 0 is an error (it used to become the default)."""
    import shutil

    run = tmp_path / "fresh"
    shutil.copytree(base_run, run, ignore=shutil.ignore_patterns("distill"))
    with pytest.raises(DistillationSetupError, match="--epochs-per-stage must be >= 1, got 0"):
        distill_chain(FPCD, run, until=1, epochs_per_stage=0, verbose=0)
    with pytest.raises(DistillationSetupError, match=r"the start \(0 steps\)"):
        distill_chain(FPCD, run, until=1, start_steps=0, verbose=0)


def test_resolve_run_for_steps_picks_the_stage_or_names_the_available_ones(base_run, chain):
    for num_steps in STAGES:
        assert resolve_run_for_steps(base_run, num_steps) == stage_dir(base_run, num_steps)
    for num_steps in (None, 8, 16):
        assert resolve_run_for_steps(base_run, num_steps) == base_run
    with pytest.raises(
        ValueError, match=r"no distilled model for 3 steps. Available steps: 8 or more .*, 4, 2, 1"
    ):
        resolve_run_for_steps(base_run, 3)
    assert resolve_run_for_steps(stage_dir(base_run, 2), 2) == stage_dir(base_run, 2)
    with pytest.raises(ValueError, match="distilled to sample in 2 steps, not 4"):
        resolve_run_for_steps(stage_dir(base_run, 2), 4)


def sample_cli(run: Path, steps: int, out: Path) -> subprocess.CompletedProcess:
    args = ["--run", str(run), "--steps", str(steps), "--jets-per-class", "6", "--classes", "t"]
    return subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "sample.py"),
            *args,
            "--seed",
            "3",
            "--out",
            str(out),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        timeout=600,
    )


@pytest.mark.slow
def test_sample_cli_steps_picks_the_distilled_stage(base_run, chain, tmp_path):
    result = sample_cli(base_run, 2, tmp_path / "two")
    assert result.returncode == 0, result.stderr
    particles, jets = read_jetnet_file(tmp_path / "two" / "t.hdf5", expected_particles=30)
    expected = {}
    for run in (stage_dir(base_run, 2), base_run):
        model, preprocessor, cfg = load_trained_model(run)
        # sample.py samples in chunks, each seeded from (seed, class, chunk): here one chunk of 6
        chunk = chunk_seed(3, JET_CLASSES.index("t"), 0)
        expected[run] = generate_jets(model, preprocessor, cfg, 6, ["t"], num_steps=2, seed=chunk)["t"]
    np.testing.assert_allclose(particles, expected[stage_dir(base_run, 2)][0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jets, expected[stage_dir(base_run, 2)][1], rtol=1e-5, atol=1e-3)
    assert not np.allclose(jets, expected[base_run][1], rtol=1e-5, atol=1e-3)  # the base model differs

    missing = sample_cli(base_run, 3, tmp_path / "three")
    assert missing.returncode == 2
    assert "no distilled model for 3 steps" in missing.stderr and "4, 2, 1" in missing.stderr


def test_students_sample_with_ddim_and_the_base_run_with_either_sampler(base_run, chain, tmp_path):
    from gsgm.generation.runs import sample_jets_to_directory
    from gsgm.training.distill import _stage_config

    # a student learned its teacher's DDIM steps: its stage config says ddim whatever the teacher's does
    cfg = tiny_config()
    cfg.sampling.sampler = "dpm++2m"
    assert _stage_config(FPCD, cfg, 4, 1).sampling.sampler == "ddim"
    assert load_config(stage_dir(base_run, 4) / "config.json").sampling.sampler == "ddim"
    with pytest.raises(ValueError, match="distilled student.*--sampler ddim only"):
        sample_jets_to_directory(base_run, tmp_path / "one", 4, steps=1, sampler="dpm++2m")
    assert not (tmp_path / "one").exists()

    sets = {}
    for sampler in ("ddim", "dpm++2m"):
        out = tmp_path / sampler
        sample_jets_to_directory(base_run, out, 6, classes="t", steps=8, seed=3, sampler=sampler)
        particles, jets = read_jetnet_file(out / "t.hdf5", expected_particles=30)
        validate_arrays(particles, jets)
        sets[sampler] = jets
        manifest = json.loads((out / "manifest.json").read_text())
        # recorded when it is not FPCD's DDIM (sample sets from before the option stay finished)
        assert manifest.get("sampler", "ddim") == sampler
    assert not np.allclose(sets["ddim"], sets["dpm++2m"], rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError, match="--sampler for FPCD runs must be one of ddim, dpm\\+\\+2m"):
        sample_jets_to_directory(base_run, tmp_path / "pc", 6, steps=8, sampler="pc")


def test_one_epoch_count_per_stage(base_run, tmp_path):
    """epochs_per_stage as a list: stage k trains its own count; chain.json keeps the list; a wrong
    length, a zero or a different list for an existing chain are errors naming the option."""
    run = tmp_path / "per-stage"
    shutil.copytree(base_run, run, ignore=shutil.ignore_patterns("distill"))
    with pytest.raises(DistillationSetupError, match=r"lists 2 counts for 3 stages \(8 -> 4 -> 2 -> 1\)"):
        distill_chain(FPCD, run, until=1, epochs_per_stage=[1, 2], verbose=0)
    with pytest.raises(DistillationSetupError, match="--epochs-per-stage must be >= 1, got 0"):
        distill_chain(FPCD, run, until=1, epochs_per_stage=[1, 0, 2], verbose=0)
    stages = distill_chain(FPCD, run, until=1, epochs_per_stage=[1, 1, 3], verbose=0)
    assert [len(RunDirectory(stage).read_history()) for stage in stages] == [1, 1, 3]
    assert json.loads((run / "distill" / "chain.json").read_text())["epochs_per_stage"] == [1, 1, 3]
    distill_chain(FPCD, run, until=1, verbose=0)  # continuing with the stored list: nothing to do
    with pytest.raises(DistillationSetupError, match=r"epochs per stage \[1, 1, 3\], not \[1, 1, 4\]"):
        distill_chain(FPCD, run, until=1, epochs_per_stage=[1, 1, 4], verbose=0)


def test_a_stage_ema_warms_up_instead_of_keeping_the_teachers_weights(base_run, chain):
    """The student's EMA starts as the teacher; with a plain decay (0.9 here, 0.999 in the recipe) a
    short stage would end holding much of the teacher. The warm-up min(decay, (1 + n) / (10 + n))
    leaves the averaged weights next to the trained ones."""
    cfg = tiny_config()
    teacher = build_model(cfg, cfg.data.num_particles, seed=0)
    teacher.load_weights(RunDirectory(base_run).inference_weights())
    student = build_distillation_model(cfg, teacher, 4, seed=0)
    decays = [float(student.ema_decays(tf.constant(n))["ema_jet_net"]) for n in (0, 5, 10**6)]
    np.testing.assert_allclose(decays, [0.1, 6 / 15, 0.9], rtol=1e-6)

    model = build_model(cfg, cfg.data.num_particles, seed=0)
    model.load_weights(RunDirectory(stage_dir(base_run, 4)).latest_checkpoint() / "model.weights.h5")
    start = np.concatenate([w.ravel() for w in teacher.ema_jet_net.get_weights()])
    raw = np.concatenate([w.ravel() for w in model.jet_net.get_weights()])
    averaged = np.concatenate([w.ravel() for w in model.ema_jet_net.get_weights()])
    assert np.linalg.norm(averaged - raw) < 0.2 * np.linalg.norm(start - raw)
