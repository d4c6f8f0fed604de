"""End to end on the shipped sample: train score / consistency (isolation, distillation), resume, sample,
evaluate and plot, through the API and the command-line scripts (run in-process).

The runs here execute eagerly (``tf.config.run_functions_eagerly``): tracing a U-Net training step costs
~10 s of CPU per run on 2 cores, 3-4 times the whole tiny run. :func:`test_train_steps_trace_in_graph_mode`
checks that the steps also work as compiled graphs, as in real training.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from gsgm.config import ConfigError, load_images_config, resolve_from_data
from gsgm.data.images import load_jet_images, make_image_dataset
from gsgm.families.jet_images import build_image_model, load_image_run, train_images
from gsgm.generation.image_files import read_images_file
from gsgm.generation.images import generate_images
from gsgm.training import loop as trainer_module
from gsgm.training.loop import TrainingSetupError
from gsgm.training.optim import make_optimizer
from gsgm.training.run_dir import RunDirectory

pytestmark = [
    pytest.mark.slow,
    # tf.data map functions stay compiled under run_functions_eagerly; TensorFlow says so every time.
    pytest.mark.filterwarnings("ignore:Even though the `tf.config.experimental_run_functions_eagerly`"),
]

REPO = Path(__file__).resolve().parents[1]
JETS = 16  # per class: 80 images, 72 for training (3 batches of 32), 8 for validation


def tiny_config(epochs: int = 2):
    cfg = load_images_config(REPO / "configs" / "images_quick.json")
    for section in (cfg.score, cfg.consistency):
        unet = section.unet
        unet.base_channels, unet.channel_multipliers, unet.norm_groups, unet.time_features = 8, [1], 4, 8
    cfg.consistency.final_discretization = 10
    cfg.training.epochs, cfg.training.batch_size, cfg.training.seed = epochs, 32, 5
    cfg.training.learning_rate = 1e-3
    return cfg


@pytest.fixture(scope="module", autouse=True)
def eager():
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("image_runs")
    paths = {name: root / name for name in ("score", "ct", "cd")}
    train_images(tiny_config(), "score", "builtin", paths["score"], max_jets_per_class=JETS, verbose=0)
    train_images(tiny_config(), "consistency", "builtin", paths["ct"], max_jets_per_class=JETS, verbose=0)
    train_images(
        tiny_config(epochs=1),
        "consistency",
        "builtin",
        paths["cd"],
        mode="distill",
        teacher=paths["score"],
        max_jets_per_class=JETS,
        verbose=0,
    )
    return paths


def weights(run: Path) -> list[np.ndarray]:
    model, _ = load_image_run(run)
    return [np.asarray(w) for w in model.net.get_weights() + model.ema_net.get_weights()]


def test_run_directories(runs):
    for name, model, mode in (
        ("score", "score", None),
        ("ct", "consistency", "isolation"),
        ("cd", "consistency", "distill"),
    ):
        run = RunDirectory(runs[name]).require()
        cfg = load_images_config(run.config_path)
        assert cfg.model == model  # only the trained section is kept
        assert 0 < cfg.noise.sigma_min < cfg.noise.sigma_data < cfg.noise.sigma_max
        assert cfg.sampling.pixel_threshold == cfg.noise.sigma_min
        metadata = run.read_metadata()
        assert metadata["model"] == model and metadata["mode"] == mode
        assert metadata["num_train"] == 72 and metadata["steps_per_epoch"] == 3
        assert metadata["total_steps"] == 3 * cfg.training.epochs
        stats = json.loads(run.preprocessing_path.read_text())["train_image_statistics"]
        if name != "cd":
            assert cfg.noise.sigma_max == stats["max_pairwise_distance"]
        history = run.read_history()
        assert len(history) == cfg.training.epochs
        assert all(np.isfinite(row["loss"]) and np.isfinite(row["val_loss"]) for row in history)
        assert run.best_weights_path.is_file()
    # The distilled student adopts the teacher's noise range; its metadata names the teacher.
    cd, score = (load_images_config(runs[k] / "config.json") for k in ("cd", "score"))
    assert cd.noise == score.noise
    metadata = RunDirectory(runs["cd"]).read_metadata()
    assert metadata["teacher"] == str(runs["score"]) and len(metadata["teacher_weights_sha256"]) == 64


def test_generated_images(runs):
    for name, steps in (("score", 3), ("ct", 1), ("cd", 2)):
        model, cfg = load_image_run(runs[name])
        images, labels = generate_images(model, cfg, 3, classes=["t", "w"], num_steps=steps, seed=1)
        assert images.shape == (6, 25, 25) and labels.tolist() == [2] * 3 + [3] * 3
        assert np.isfinite(images).all() and images.min() >= 0
        # Post-processing: nothing left in (0, threshold].
        assert not ((images > 0) & (images <= cfg.sampling.pixel_threshold)).any()
        again, _ = generate_images(model, cfg, 3, classes=["t", "w"], num_steps=steps, seed=1)
        np.testing.assert_array_equal(images, again)
        raw, _ = generate_images(model, cfg, 3, classes=["t", "w"], num_steps=steps, seed=2, raw=True)
        assert raw.min() < 0  # raw sampler output: noise of both signs
    model, cfg = load_image_run(runs["score"])
    ode, _ = generate_images(model, cfg, 2, classes=["g"], num_steps=3, sampler="ode", raw=True)
    pc, _ = generate_images(model, cfg, 2, classes=["g"], num_steps=3, sampler="pc", raw=True)
    assert np.isfinite(ode).all() and not np.allclose(ode, pc)
    with pytest.raises(ValueError, match="unknown jet class"):
        generate_images(model, cfg, 1, classes=["x"])


def test_resume_after_interruption_matches_uninterrupted_run(runs, tmp_path, monkeypatch):
    real_save = trainer_module.save_checkpoint

    def save_then_die(run, model, state, epoch):
        path = real_save(run, model, state, epoch)
        if epoch == 0:
            raise KeyboardInterrupt("simulated kill after epoch 0")
        return path

    out = tmp_path / "ct"
    monkeypatch.setattr(trainer_module, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_images(tiny_config(), "consistency", "builtin", out, max_jets_per_class=JETS, verbose=0)
    monkeypatch.setattr(trainer_module, "save_checkpoint", real_save)
    after_one = weights(out)
    train_images(None, "consistency", "builtin", out, resume=True, verbose=0)
    resumed, straight = weights(out), weights(runs["ct"])
    for a, b in zip(resumed, straight, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # The second epoch changed the weights, so the comparison above is not trivially true.
    assert sum(not np.allclose(a, b) for a, b in zip(after_one, resumed, strict=True)) > len(resumed) // 2


def test_setup_errors(runs, tmp_path):
    with pytest.raises(TrainingSetupError, match="already holds a run"):
        train_images(tiny_config(), "score", "builtin", runs["score"], verbose=0)
    with pytest.raises(TrainingSetupError, match="distillation needs a score run"):
        train_images(
            tiny_config(), "consistency", "builtin", tmp_path / "x", mode="distill", teacher=runs["ct"]
        )
    with pytest.raises(ConfigError, match="--model score"):
        train_images(REPO / "configs" / "images_consistency.json", "score", "builtin", tmp_path / "y")
    with pytest.raises(ValueError, match="--teacher"):
        train_images(tiny_config(), "consistency", "builtin", tmp_path / "z", mode="distill")
    with pytest.raises(TrainingSetupError, match="holds a jet_image_score run"):
        train_images(None, "consistency", "builtin", runs["score"], resume=True)


def run_script(path: str, *args: str) -> None:
    """Run a CLI script in this process (no second TensorFlow start-up); it must exit with status 0."""
    argv = sys.argv
    sys.argv = [path, *map(str, args)]
    try:
        with pytest.raises(SystemExit) as exit_info:
            runpy.run_path(str(REPO / path), run_name="__main__")
    finally:
        sys.argv = argv
    assert exit_info.value.code == 0


def test_command_line_sample_evaluate_plot(runs, tmp_path, capsys):
    files = {}
    for name, steps in (("score", 2), ("consistency", 1)):
        files[name] = tmp_path / f"{name}.h5"
        run = runs["score" if name == "score" else "ct"]
        run_script(
            "scripts/sample_images.py",
            "--run",
            run,
            "--images-per-class",
            4,
            "--classes",
            "t,w",
            "--steps",
            steps,
            "--out",
            files[name],
        )
        images, labels, attributes = read_images_file(files[name])
        assert (
            images.shape == (8, 25, 25)
            and attributes["steps"] == steps
            and attributes["model"] == cfg_model(run)
        )
    second = tmp_path / "score2.h5"
    run_script(
        "scripts/sample_images.py",
        "--run",
        runs["score"],
        "--images-per-class",
        4,
        "--classes",
        "t,w",
        "--steps",
        2,
        "--seed",
        1,
        "--out",
        second,
    )
    run_script(
        "scripts/evaluate_images.py",
        "--data",
        "builtin",
        "--samples",
        f"score={files['score']},{second}",
        "--samples",
        f"consistency={files['consistency']}",
        "--out",
        tmp_path / "report",
    )
    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert report["models"]["score"]["summary"]["fd_all"]["n"] == 2
    assert set(report["models"]["consistency"]["mass_ks_pooled"]) == {"t", "w"}
    assert report["classifier"]["test_accuracy"] > 0.5
    assert "FD (jet-image classifier embedding)" in (tmp_path / "report" / "metrics.md").read_text()
    run_script(
        "plots/plot_images.py",
        "--samples",
        f"score={files['score']}",
        "--samples",
        f"consistency={files['consistency']}",
        "--out",
        tmp_path / "plots",
    )
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {
        "images_truth.png",
        "images_score.png",
        "images_consistency.png",
        "mass_over_pt.png",
    }


def cfg_model(run: Path) -> str:
    return load_images_config(run / "config.json").model


def test_train_steps_trace_in_graph_mode():
    """One compiled consistency-training step (the most involved one: N(k), Karras levels, target EMA)."""
    tf.config.run_functions_eagerly(False)
    try:
        cfg = tiny_config().for_model("consistency")
        cfg = resolve_from_data(
            cfg, {"nonzero_q05": 1.4e-3, "max_pairwise_distance": 1.3, "pixel_std": 0.024}
        )
        model = build_image_model(cfg, total_steps=10)
        model.compile(optimizer=make_optimizer(cfg.training, 1, schedule="constant"))
        images, labels = load_jet_images("builtin", "t", split="valid", max_jets_per_class=8)
        before = [np.asarray(w) for w in model.target_net.get_weights()]
        history = model.fit(make_image_dataset(images, labels, 8), epochs=1, shuffle=False, verbose=0).history
        assert np.isfinite(history["loss"][0])
        assert int(model.optimizer.iterations.numpy()) == 1
        after = model.target_net.get_weights()
        assert any(not np.allclose(a, b) for a, b in zip(before, after, strict=True))  # target EMA moved
    finally:
        tf.config.run_functions_eagerly(True)
