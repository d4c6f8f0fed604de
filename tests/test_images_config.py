"""Jet-image configs: shipped files valid, precise errors, data-derived noise levels, model sections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gsgm.config import (
    ConfigError,
    images_config_to_dict,
    load_images_config,
    resolve_from_data,
    save_images_config,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
STATS = {"nonzero_q05": 0.0014, "max_pairwise_distance": 1.36, "pixel_std": 0.024}


@pytest.mark.parametrize("name", ["images_score", "images_consistency", "images_quick"])
def test_shipped_configs_are_valid(name):
    cfg = load_images_config(CONFIGS / f"{name}.json")
    assert cfg.name == name


def test_paper_configs_have_table_1_sizes():
    score = load_images_config(CONFIGS / "images_score.json").score
    consistency = load_images_config(CONFIGS / "images_consistency.json").consistency
    for section, act, emb, ema in (
        (score, "swish", "fourier", 0.9999),
        (consistency, "gelu", "sinusoidal", 0.999),
    ):
        u = section.unet
        assert (u.base_channels, u.channel_multipliers, u.num_res_blocks, u.norm_groups, u.dropout) == (
            128,
            [1, 2, 2, 2],
            2,
            32,
            0.1,
        )
        assert (u.activation, u.time_embedding, section.ema_decay) == (act, emb, ema)
    assert score.num_steps == 15


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def quick_dict() -> dict:
    return json.loads((CONFIGS / "images_quick.json").read_text())


@pytest.mark.parametrize(
    ("edit", "key", "message"),
    [
        (lambda d: d["score"]["unet"].update(dropuot=0.1), "score.unet.dropuot", "unknown key"),
        (lambda d: d["consistency"].pop("rho"), "consistency.rho", "missing key"),
        (lambda d: d["score"]["unet"].update(dropout=1.5), "score.unet.dropout", "[0, 1)"),
        (lambda d: d["score"]["unet"].update(norm_groups=5), "score.unet.norm_groups", "divide"),
        (lambda d: d["consistency"].update(distance="lpips"), "consistency.distance", "l2"),
        (lambda d: d["score"].update(parameterization="v"), "score.parameterization", "denoiser"),
        (lambda d: d["noise"].update(sigma_min=2.0, sigma_max=1.0), "noise.sigma_max", "sigma_min"),
        (lambda d: d.update(score=None, consistency=None), "score", "both null"),
        (lambda d: d["training"].update(epochs=True), "training.epochs", "integer"),
        (lambda d: d.update(extra=1), "extra", "unknown key"),
    ],
)
def test_errors_name_file_and_key(tmp_path, quick_dict, edit, key, message):
    edit(quick_dict)
    path = write(tmp_path, quick_dict)
    with pytest.raises(ConfigError) as info:
        load_images_config(path)
    assert info.value.key == key and info.value.source == str(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_model_sections_and_resolution(tmp_path):
    cfg = load_images_config(CONFIGS / "images_quick.json")
    with pytest.raises(ValueError, match="exactly one"):
        _ = cfg.model
    score_cfg = cfg.for_model("score")
    assert score_cfg.model == "score" and score_cfg.consistency is None
    score_cfg.training.epochs = 1  # a copy: the original is untouched
    assert cfg.training.epochs == 10
    with pytest.raises(ConfigError, match="--model score"):
        load_images_config(CONFIGS / "images_consistency.json").for_model("score")
    resolved = resolve_from_data(score_cfg, STATS)
    assert (resolved.noise.sigma_min, resolved.noise.sigma_max, resolved.noise.sigma_data) == (
        0.0014,
        1.36,
        0.024,
    )
    assert resolved.sampling.pixel_threshold == 0.0014
    score_cfg.noise.sigma_max = 50.0  # explicit values are kept
    assert resolve_from_data(score_cfg, STATS).noise.sigma_max == 50.0
    save_images_config(resolved, tmp_path / "run.json")
    assert images_config_to_dict(load_images_config(tmp_path / "run.json")) == images_config_to_dict(resolved)
    resolved.training.batch_size = 0
    with pytest.raises(ConfigError, match="training.batch_size"):
        save_images_config(resolved, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()
