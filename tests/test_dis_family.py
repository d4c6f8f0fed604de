"""The DIS family: the circular U-Net, the training model's importance sampler, exact resume after an
interruption, evaluation on truth vs truth, and (slow) gsgm train / sample / evaluate end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from gsgm.config.dis import (
    DisConfig,
    DisDataConfig,
    DisDiffusionConfig,
    DisSamplingConfig,
    DisTrainingConfig,
    DisUNetConfig,
    save_dis_config,
)
from gsgm.data.dis_format import read_dis_file, resolve_dis_file, split_events
from gsgm.data.dis_images import events_to_images
from gsgm.data.dis_observables import DisComparison
from gsgm.evaluation.dis import evaluate_dis
from gsgm.models.unet import PeriodicPadding, build_unet

REPO = Path(__file__).resolve().parents[1]
# no attention in the trained tiny model: it costs ~25 % more tracing (the circular test covers it)
UNET_ATTENTION: list[int] = []
UNET_LEVELS = [1, 2]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}


def gsgm(cwd: Path, *args: str) -> str:
    """Run the gsgm command; its stdout (the test fails with stderr's tail on an error)."""
    result = subprocess.run([sys.executable, "-m", "gsgm.cli", *args], capture_output=True, text=True,
                            env=ENV, timeout=600, cwd=cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def tiny_unet(**overrides) -> DisUNetConfig:
    values = dict(
        base_channels=8,
        channel_multipliers=[1, 2, 2],
        num_res_blocks=1,
        norm_groups=4,
        dropout=0.0,
        activation="swish",
        time_embedding="sinusoidal",
        time_features=16,
        time_embedding_scale=1.0,
        padding="circular_phi",
        attention_resolutions=[4],
        attention_heads=2,
    )
    values.update(overrides)
    return DisUNetConfig(**values)


def tiny_config(tmp_path: Path, epochs: int = 2, num_steps: int = 20, **diffusion) -> Path:
    cfg = DisConfig(
        name="dis_tiny",
        description="tiny DIS model for tests",
        data=DisDataConfig(num_pixels=16, max_events=160),
        unet=tiny_unet(
            base_channels=4, channel_multipliers=[1, 2], norm_groups=2, attention_resolutions=UNET_ATTENTION
        ),
        diffusion=DisDiffusionConfig(
            num_steps=num_steps,
            importance_history=2,
            ema_decay=0.9,
            **{"importance_uniform": 0.5, **diffusion},
        ),
        training=DisTrainingConfig(
            batch_size=16, learning_rate=1e-3, epochs=epochs, early_stopping_patience=epochs
        ),
        sampling=DisSamplingConfig(sampler="ddim", num_steps=min(5, num_steps)),
    )
    path = tmp_path / f"dis-{epochs}-{num_steps}.json"
    save_dis_config(cfg, path)
    return path


def _net(padding: str, attention=(4,)) -> keras.Model:
    keras.utils.set_random_seed(3)
    cfg = tiny_unet(padding=padding, attention_resolutions=list(attention))
    return build_unet(cfg, 16, num_classes=None, in_channels=3, out_channels=6, padding=padding,
                      attention_resolutions=attention, attention_heads=2, time_name="t")  # fmt: skip


def test_circular_padding_makes_the_phi_edge_a_neighbourhood():
    x = np.zeros((1, 4, 6, 1), np.float32)
    x[0, :, 0, 0], x[0, :, -1, 0] = 1.0, 2.0
    padded = np.asarray(PeriodicPadding(1)(x))
    assert padded.shape == (1, 6, 8, 1)
    np.testing.assert_array_equal(padded[0, 1:-1, 0, 0], 2.0)  # left of phi pixel 0: the last pixel
    np.testing.assert_array_equal(padded[0, 1:-1, -1, 0], 1.0)
    np.testing.assert_array_equal(padded[0, [0, -1]], 0.0)  # eta is not periodic: zeros
    # A feature moved across the phi edge is processed as if it had not moved: the whole U-Net
    # (3 levels, attention) commutes with a cyclic shift along phi by a multiple of its stride 4.
    rng = np.random.default_rng(0)
    image = np.full((2, 16, 16, 3), -1.0, np.float32)
    image[:, 5:8, 14:16] = rng.uniform(-0.5, 0.8, (2, 3, 2, 3))  # straddles the edge after the shift
    image[:, 5:8, 0:1] = rng.uniform(-0.5, 0.8, (2, 3, 1, 3))
    t = np.array([3.0, 40.0], np.float32)
    for padding, equivariant in (("circular_phi", True), ("same", False)):
        net = _net(padding)
        out = np.asarray(net({"x": image, "t": t}))
        shifted = np.asarray(net({"x": np.roll(image, 4, axis=2), "t": t}))
        error = np.abs(shifted - np.roll(out, 4, axis=2)).max()
        assert (error < 1e-4) == equivariant, (padding, error)
    # ... but not along eta (zero padding there)
    net = _net("circular_phi")
    out = np.asarray(net({"x": image, "t": t}))
    assert (
        np.abs(np.asarray(net({"x": np.roll(image, 4, axis=1), "t": t})) - np.roll(out, 4, axis=1)).max()
        > 1e-3
    )
    with pytest.raises(ValueError, match="divisible"):
        build_unet(tiny_unet(), 18, num_classes=None, padding="circular_phi")


@pytest.fixture(scope="module")
def truth():
    return split_events(read_dis_file(resolve_dis_file("builtin")), "test")


def test_evaluation_truth_vs_truth_sits_at_the_floor_and_a_distortion_does_not(truth):
    first, second = truth.select(slice(0, 1000)), truth.select(slice(1000, 2000))
    same = events_to_images(second, 32)
    distorted = same.copy()
    distorted[..., 0] *= 2.0  # pi+ twice as hard
    report = evaluate_dis(DisComparison(first, {"pythia": same, "hard_pions": distorted}, 32))
    pythia, hard = report["models"]["pythia"], report["models"]["hard_pions"]
    for key in ("log10_z_pi+", "eta_pi+", "sum_z", "log10_Q2", "multiplicity_e-"):
        assert pythia["w1"][key] < 3 * pythia["floor_w1"][key] + 1e-9, key
    assert hard["w1"]["log10_z_pi+"] > 5 * hard["floor_w1"]["log10_z_pi+"]
    assert hard["w1"]["log10_z_pi+"] == pytest.approx(np.log10(2.0), rel=0.1)  # a shift by log10 2
    assert hard["w1"]["eta_pi+"] == pytest.approx(pythia["w1"]["eta_pi+"], rel=1e-6)  # z only
    assert pythia["events_above_sum_rule"] == 0 and report["truth_events_above_sum_rule"] == 0
    assert report["pixelation"]["eta_pi+"] > 0.05  # the pixel width (0.625) shows, z does not
    assert report["pixelation"]["log10_z_e-"] < 1e-3


# The two slow tests share one run trained by the gsgm command (tracing the training step of even a
# tiny U-Net costs ~20 s on 2 cores, once per training process). T = 4 diffusion steps with 2 losses
# per step: the importance sampler is warm from the first epoch on, so the resumed run must restore its
# loss history to draw the same times.
@pytest.fixture(scope="module")
def straight_run(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("dis")
    config = tiny_config(tmp, epochs=3, num_steps=4)
    gsgm(
        tmp,
        "train",
        "--config",
        str(config),
        "--data",
        "builtin",
        "--out",
        str(tmp / "run"),
        "--verbose",
        "0",
    )
    return tmp / "run", config


@pytest.mark.slow
def test_resume_after_an_interruption_equals_an_uninterrupted_run(straight_run, tmp_path, monkeypatch):
    from gsgm.families.dis import DIS
    from gsgm.training import loop as loop_module
    from gsgm.training.driver import train_run
    from gsgm.training.run_dir import RunDirectory

    straight, config = straight_run
    real_save = loop_module.save_checkpoint

    def save_then_die(run, model, state, epoch):
        path = real_save(run, model, state, epoch)
        if epoch == 1:
            raise KeyboardInterrupt("killed after epoch 1")
        return path

    monkeypatch.setattr(loop_module, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_run(DIS, config, "builtin", tmp_path / "resumed", verbose=0)
    monkeypatch.setattr(loop_module, "save_checkpoint", real_save)
    assert len(RunDirectory(tmp_path / "resumed").read_history()) == 2
    train_run(DIS, None, "builtin", tmp_path / "resumed", resume=True, verbose=0)
    a, _ = DIS.load_run(straight)
    b, _ = DIS.load_run(tmp_path / "resumed")
    counts = np.asarray(a.loss_counts)
    num_train = json.loads((straight / "metadata.json").read_text())["num_train"]
    assert counts.min() >= 2 and counts.sum() <= 3 * num_train  # warm; every L_t recorded once at most
    assert np.all(np.asarray(a.loss_history) > 0)
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    assert [r["loss"] for r in RunDirectory(straight).read_history()] == pytest.approx(
        [r["loss"] for r in RunDirectory(tmp_path / "resumed").read_history()], rel=1e-5
    )


@pytest.mark.slow
def test_gsgm_train_sample_evaluate_end_to_end(straight_run, tmp_path):
    from gsgm.generation.dis import read_dis_images_file
    from gsgm.generation.registry import sample_run

    run, _ = straight_run
    metadata = json.loads((run / "metadata.json").read_text())
    assert metadata["family"] == "dis" and metadata["sparsity"] > 0.99
    ddim = sample_run(run, tmp_path / "ddim.h5", 24, steps=4, seed=1, batch_size=12)
    ancestral = sample_run(run, tmp_path / "anc.h5", 12, sampler="ancestral", seed=1)
    assert "ancestral, 4 steps" in ancestral.summary()
    for path, count in ((ddim.path, 24), (ancestral.path, 12)):
        images, attributes = read_dis_images_file(path)
        assert images.shape == (count, 16, 16, 3) and np.isfinite(images).all() and images.min() >= 0
        # z' is clipped to [-1, 1] and mapped back: at most the z of z' = 1
        assert images.max() <= 1.1 and attributes["eta_max"] == 10.0
    again = sample_run(run, tmp_path / "ddim2.h5", 24, steps=4, seed=1, batch_size=12)
    np.testing.assert_array_equal(read_dis_images_file(again.path)[0], read_dis_images_file(ddim.path)[0])
    with pytest.raises(ValueError, match="--steps must be in 1..4"):
        sample_run(run, tmp_path / "x.h5", 2, steps=9)
    out = gsgm(tmp_path, "evaluate", "dis", "--data", "builtin", "--samples", f"tiny={ddim.path}",
               "--max-events", "400", "--out", str(tmp_path / "eval"))  # fmt: skip
    assert "| log10_z_pi+ |" in out
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["models"]["tiny"]["events"] == 24 and metrics["num_pixels"] == 16
    for name in ("spectra", "multiplicities", "sum_z", "correlations", "reduced_cross_section"):
        assert (tmp_path / "eval" / f"dis_{name}.png").is_file(), name
