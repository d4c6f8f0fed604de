"""FPCD training loop: run directory contents, resume, overfitting, sampling, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from gsgm.config import ConfigError, load_config
from gsgm.data.jetnet_format import JET_CLASSES, read_jetnet_file, write_jetnet_file
from gsgm.data.loading import builtin_data_dir
from gsgm.data.preprocessing import constituent_mass
from gsgm.families.fpcd import build_model, load_trained_model, load_training_data, train
from gsgm.generation.jets import generate_jets
from gsgm.training import loop as trainer_module
from gsgm.training.loop import TrainingSetupError
from gsgm.training.optim import make_optimizer
from gsgm.training.run_dir import RunDirectory, RunDirectoryError

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "configs" / "quick.json"


def tiny_config(epochs: int = 2, classes: tuple[str, ...] = ("t", "w")):
    cfg = load_config(QUICK)
    cfg.data.classes = list(classes)
    cfg.jet_net.num_blocks, cfg.jet_net.width = 1, 16
    cfg.particle_net.embed_dim, cfg.particle_net.num_transformer_blocks = 8, 1
    cfg.particle_net.num_heads, cfg.particle_net.ffn_dim, cfg.particle_net.output_hidden_dim = 2, 16, 8
    cfg.embedding.fourier_features, cfg.embedding.time_dims, cfg.embedding.cond_dim = 4, [8, 8], 8
    cfg.training.batch_size, cfg.training.epochs, cfg.training.ema_decay = 16, epochs, 0.9
    cfg.training.seed = 7
    return cfg


def checkpoint_weights(run: Path) -> list[np.ndarray]:
    """Raw and EMA network weights of the run's newest checkpoint."""
    cfg = load_config(run / "config.json")
    model = build_model(cfg, cfg.data.num_particles, cfg.training.seed)
    model.load_weights(RunDirectory(run).latest_checkpoint() / "model.weights.h5")
    nets = (model.jet_net, model.particle_net, model.ema_jet_net, model.ema_particle_net)
    return [np.asarray(w) for net in nets for w in net.get_weights()]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    train(tiny_config(), data="builtin", out=out, max_jets_per_class=48, verbose=0)
    return out


def test_run_directory_holds_everything_needed(trained_run):
    run = RunDirectory(trained_run)
    for path in (
        run.config_path,
        run.preprocessing_path,
        run.metadata_path,
        run.history_path,
        run.best_weights_path,
    ):
        assert path.is_file(), path
    metadata = run.read_metadata()
    assert metadata["seed"] == 7
    assert len(metadata["data_sha256"]) == 64
    assert {"tensorflow", "keras", "numpy", "gsgm"} <= set(metadata["versions"])
    history = run.read_history()
    assert [int(r["epoch"]) for r in history] == [0, 1]
    assert all(np.isfinite(r["loss"]) and np.isfinite(r["val_loss"]) for r in history)
    assert history[1]["learning_rate"] < history[0]["learning_rate"]  # cosine decay moves
    assert run.latest_checkpoint().name == "epoch-0001"
    state = json.loads((run.latest_checkpoint() / "state.json").read_text())
    assert state["next_epoch"] == 2


def test_samples_from_trained_run_are_valid_jetnet_files(trained_run, tmp_path):
    model, preprocessor, cfg = load_trained_model(trained_run)
    generated = generate_jets(
        model, preprocessor, cfg, jets_per_class=12, classes=["t", "w"], num_steps=3, seed=1
    )
    assert set(generated) == {"t", "w"}
    for jet_class, (particles, jets) in generated.items():
        assert particles.shape == (12, 30, 4) and jets.shape == (12, 4)
        path = write_jetnet_file(tmp_path / f"{jet_class}.hdf5", particles, jets)
        read_jetnet_file(path, expected_particles=30)  # validates mask, multiplicity, finiteness
    again = generate_jets(model, preprocessor, cfg, jets_per_class=12, classes=["t"], num_steps=3, seed=1)
    np.testing.assert_array_equal(again["t"][0], generated["t"][0])


def test_pt_sum_trains_five_jet_features_and_samples_particles_summing_to_them(tmp_path):
    cfg = tiny_config(epochs=1)
    cfg.data.pt_sum, cfg.data.pt_feature = True, "log"
    out = tmp_path / "pt-sum"
    train(cfg, data="builtin", out=out, max_jets_per_class=48, verbose=0)
    model, preprocessor, cfg = load_trained_model(out)
    assert preprocessor.pt_sum and model.jet_net.input["z"].shape[-1] == 5
    assert model.particle_net.input["jets"].shape[-1] == 5
    generated = generate_jets(
        model, preprocessor, cfg, jets_per_class=12, classes=["t", "w"], num_steps=3, seed=1
    )
    for jet_class, (particles, jets) in generated.items():
        assert jets.shape == (12, 4)
        read_jetnet_file(
            write_jetnet_file(tmp_path / f"{jet_class}.hdf5", particles, jets), expected_particles=30
        )
        # Each jet's particles are rescaled to its generated pt_rel_sum, which the quantile map keeps
        # within the fit jets' range; an untrained particle network alone would not land there.
        quantiles = preprocessor.jet_quantiles[JET_CLASSES.index(jet_class)][4]
        summed = (particles[..., 2] * particles[..., 3]).sum(axis=1)
        assert np.all((summed > quantiles[0] - 1e-5) & (summed < quantiles[-1] + 1e-5)), summed
    cfg.data.pt_sum = False  # networks built from this config would be 4 wide: refused by name
    with pytest.raises(TrainingSetupError, match="data.pt_sum is False.*pt_sum=True"):
        load_training_data(cfg, "builtin", max_jets_per_class=48, preprocessor=preprocessor)


def test_constituent_mass_trains_six_jet_features_and_samples_jets_of_that_mass(tmp_path):
    cfg = tiny_config(epochs=1)
    cfg.data.pt_sum, cfg.data.constituent_mass, cfg.data.pt_feature = True, True, "log"
    out = tmp_path / "constituent-mass"
    train(cfg, data="builtin", out=out, max_jets_per_class=48, verbose=0)
    model, preprocessor, cfg = load_trained_model(out)
    assert preprocessor.constituent_mass and model.jet_net.input["z"].shape[-1] == 6
    assert model.particle_net.input["jets"].shape[-1] == 6
    generated = generate_jets(model, preprocessor, cfg, jets_per_class=12, classes=["w"], num_steps=3, seed=1)
    particles, jets = generated["w"]
    read_jetnet_file(write_jetnet_file(tmp_path / "w.hdf5", particles, jets), expected_particles=30)
    # Each jet's angles are scaled to its generated mass (within the fit jets' range by the quantile
    # map) unless the cone stops it first; an untrained particle network alone lands anywhere.
    quantiles = preprocessor.jet_quantiles[JET_CLASSES.index("w")][-1]
    masses = constituent_mass(particles[..., 0], particles[..., 1], particles[..., 2], particles[..., 3])
    farthest = np.hypot(particles[..., 0], particles[..., 1]).max(axis=1)
    on_cone = farthest > preprocessor.max_delta_r[JET_CLASSES.index("w")] - 1e-5
    assert np.all(on_cone | ((masses > quantiles[0] - 1e-5) & (masses < quantiles[-1] + 1e-5))), masses
    cfg.data.constituent_mass = False  # networks built from this config would be 5 wide: refused by name
    with pytest.raises(TrainingSetupError, match="data.constituent_mass is False.*constituent_mass=True"):
        load_training_data(cfg, "builtin", max_jets_per_class=48, preprocessor=preprocessor)


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    train(tiny_config(epochs=3), data="builtin", out=straight, max_jets_per_class=32, verbose=0)

    interrupted = tmp_path / "interrupted"
    real_save = trainer_module.save_checkpoint

    def save_then_die(run, model, state, epoch):
        path = real_save(run, model, state, epoch)
        if epoch == 1:
            raise KeyboardInterrupt("simulated kill after epoch 1")
        return path

    monkeypatch.setattr(trainer_module, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(epochs=3), data="builtin", out=interrupted, max_jets_per_class=32, verbose=0)
    monkeypatch.setattr(trainer_module, "save_checkpoint", real_save)
    assert RunDirectory(interrupted).latest_checkpoint().name == "epoch-0001"

    train(None, data="builtin", out=interrupted, resume=True, verbose=0)
    assert len(RunDirectory(interrupted).read_history()) == 3
    for a, b in zip(checkpoint_weights(straight), checkpoint_weights(interrupted), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # A different seed must give different weights, or the comparison above proves nothing.
    other = tmp_path / "other"
    train(tiny_config(epochs=1), data="builtin", out=other, max_jets_per_class=32, verbose=0, seed=8)
    pairs = zip(checkpoint_weights(straight), checkpoint_weights(other), strict=True)
    differs = [not np.allclose(a, b) for a, b in pairs]
    assert sum(differs) > len(differs) // 2


def test_loss_decreases_when_overfitting_one_batch(real_jets30):
    from gsgm.data.pipeline import make_dataset
    from gsgm.data.preprocessing import JetPreprocessor

    cfg = tiny_config()
    sample = real_jets30.select(np.arange(0, len(real_jets30), 97)[:32])
    arrays = JetPreprocessor.fit(sample).transform(sample)
    batch = next(iter(make_dataset(*arrays, sample.labels, batch_size=32, shuffle=False)))
    model = build_model(cfg, 30, seed=3)
    model.compile(optimizer=make_optimizer(cfg.training, steps_per_epoch=10_000))
    # Traced once each: called eagerly, the 360 steps below took 80 s of the suite.
    train_step, test_step = tf.function(model.train_step), tf.function(model.test_step)

    def held_fixed_loss() -> float:
        # test_step draws its noise from the eval counter: resetting it makes the evaluation repeatable
        model.eval_counter.assign(0)
        model.reset_metrics()
        for _ in range(20):
            result = test_step(batch)
        return float(result["loss"])

    losses = [held_fixed_loss()]
    for _ in range(2):
        for _ in range(150):
            train_step(batch)
        losses.append(held_fixed_loss())
    assert held_fixed_loss() == losses[-1]
    # The jet part of the loss starts at about 1 (Gaussianised jet features), the particle part falls.
    assert losses[2] < losses[1] < losses[0] and losses[2] < 0.97 * losses[0], losses


@pytest.mark.slow
def test_a_short_training_learns_each_class_multiplicity_mean_and_width(tmp_path):
    """The jet network's multiplicity, after about 100 steps at 150 particles, matches each class's truth.

    Gluon and W jets of the shipped sample differ in multiplicity (mean 90 vs 47, spread 28 vs 14), so
    a model that ignored the class, or a multiplicity mis-standardised per class, fails at once. The
    spread of a short training is somewhat narrow (measured 10 % for g and 14 % for W at 32 DDIM steps;
    fewer steps narrow it further), hence the wider tolerance on it.
    """
    cfg = tiny_config(epochs=6, classes=("g", "w"))
    cfg.data.num_particles = 150
    cfg.training.batch_size, cfg.training.learning_rate, cfg.training.ema_decay = 32, 4e-3, 0.95
    out = tmp_path / "run150"
    train(cfg, data="builtin", out=out, max_jets_per_class=256, verbose=0)
    model, preprocessor, cfg = load_trained_model(out)
    generated = generate_jets(
        model, preprocessor, cfg, jets_per_class=400, classes=["g", "w"], num_steps=32, seed=1
    )
    means = {}
    for jet_class in ("g", "w"):
        truth = read_jetnet_file(builtin_data_dir() / f"{jet_class}150.hdf5")[1][:, 3]
        sampled = generated[jet_class][1][:, 3]
        means[jet_class] = sampled.mean()
        assert sampled.mean() == pytest.approx(truth.mean(), rel=0.05), jet_class
        assert sampled.std() == pytest.approx(truth.std(), rel=0.25), jet_class
    assert means["g"] - means["w"] > 30


def test_bad_inputs_give_clear_errors(tmp_path, trained_run):
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        train(tiny_config(), data=str(tmp_path / "does-not-exist"), out=tmp_path / "r1", verbose=0)
    with pytest.raises(TrainingSetupError, match="num_particles=30"):
        train(tiny_config(), data="builtin", out=tmp_path / "r2", num_particles=150, verbose=0)
    with pytest.raises(TrainingSetupError, match="already holds a run"):
        train(tiny_config(), data="builtin", out=trained_run, verbose=0)
    bad = json.loads(QUICK.read_text())
    bad["training"]["learning_rat"] = 1e-3
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="learning_rat"):
        train(tmp_path / "bad.json", data="builtin", out=tmp_path / "r3", verbose=0)
    empty_run = tmp_path / "no-weights"
    empty_run.mkdir()
    for name in ("config.json", "preprocessing.json"):
        (empty_run / name).write_text((trained_run / name).read_text())
    with pytest.raises(RunDirectoryError, match="no trained weights"):
        load_trained_model(empty_run)
    with pytest.raises(RunDirectoryError, match="run directory not found"):
        load_trained_model(tmp_path / "nowhere")
