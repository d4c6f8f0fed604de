"""Config files: every shipped config loads, invalid ones fail naming the key and the file."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from gsgm.config import (
    ConfigError,
    FPCDConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
    validate_config,
)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
# Jet-image, phase-space, calorimeter and DIS configs have their own schemas and tests
# (tests/test_images_config.py, tests/test_phase_space_family.py, tests/test_calo_family.py, test_dis_*.py).
SHIPPED = sorted(
    p for p in CONFIG_DIR.glob("*.json") if not p.name.startswith(("images_", "phase_space", "calo_", "dis_"))
)
DELETE = object()


def test_expected_configs_are_shipped():
    names = {p.stem for p in SHIPPED}
    assert {"fpcd_jetnet30", "fpcd_jetnet150", "fpcd_released", "quick"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_config_loads(path):
    cfg = load_config(path)
    assert isinstance(cfg, FPCDConfig)
    assert cfg.name == path.stem


@pytest.mark.parametrize("name, num_particles", [("fpcd_jetnet30", 30), ("fpcd_jetnet150", 150)])
def test_paper_configs_have_paper_values(name, num_particles):
    cfg = load_config(CONFIG_DIR / f"{name}.json")
    assert cfg.data.num_particles == num_particles
    assert cfg.data.classes == ["g", "q", "t", "w", "z"]
    assert (cfg.jet_net.num_blocks, cfg.jet_net.width, cfg.jet_net.leaky_slope) == (5, 512, 0.01)
    pn = cfg.particle_net
    assert (pn.embed_dim, pn.num_transformer_blocks, pn.output_hidden_dim) == (64, 8, 64)
    assert pn.leaky_slope == 0.01
    assert cfg.embedding.time_dims == [32, 64] and cfg.embedding.cond_dim == 64
    tr = cfg.training
    assert (tr.batch_size, tr.learning_rate, tr.epochs) == (128, 1e-4, 250)
    assert (tr.early_stopping_patience, tr.valid_fraction) == (20, 0.2)
    assert cfg.sampling.num_steps == 512


def test_released_config_has_released_sizes():
    cfg = load_config(CONFIG_DIR / "fpcd_released.json")
    pn = cfg.particle_net
    assert (pn.embed_dim, pn.num_transformer_blocks, pn.num_heads) == (128, 6, 2)
    # The original's Resnet(num_layer=3, mlp_dim=256) has num_layer - 1 = 2 residual blocks.
    assert (cfg.jet_net.num_blocks, cfg.jet_net.width) == (2, 256)
    assert cfg.embedding.cond_dim == 64
    assert cfg.training.ema_decay == 0.999


def _base() -> dict:
    return json.loads((CONFIG_DIR / "quick.json").read_text())


def _mutate(data: dict, keys: tuple, value) -> dict:
    data = copy.deepcopy(data)
    node = data
    for k in keys[:-1]:
        node = node[k]
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return data


BAD = [
    # (keys to change, new value, dotted key the error must name)
    (("jet_net", "widht"), 64, "jet_net.widht"),  # unknown (typo)
    (("trainingg",), {}, "trainingg"),  # unknown section
    (("jet_net", "width"), DELETE, "jet_net.width"),  # missing
    (("sampling",), DELETE, "sampling"),  # missing section
    (("jet_net", "width"), "512", "jet_net.width"),  # wrong type
    (("jet_net", "num_blocks"), True, "jet_net.num_blocks"),  # a bool is not an integer
    (("jet_net", "num_blocks"), 2.5, "jet_net.num_blocks"),
    (("embedding", "time_dims"), [32, "64"], "embedding.time_dims[1]"),
    (("embedding", "time_dims"), 32, "embedding.time_dims"),
    (("data", "recenter"), 1, "data.recenter"),
    (("data", "jet_transform"), "gaussian", "data.jet_transform"),
    (("data", "pt_feature"), "sqrt", "data.pt_feature"),
    (("data", "pt_sum"), "yes", "data.pt_sum"),
    (("data", "constituent_mass"), "no", "data.constituent_mass"),
    (("sampling", "sampler"), "heun", "sampling.sampler"),
    (("training", "grad_clip_norm"), "none", "training.grad_clip_norm"),
    (("particle_net",), [], "particle_net"),
    (("jet_net", "width"), -64, "jet_net.width"),  # invalid values
    (("particle_net", "num_heads"), 3, "particle_net.num_heads"),  # does not divide 32
    (("particle_net", "dropout"), 1.5, "particle_net.dropout"),
    (("data", "num_particles"), 40, "data.num_particles"),
    (("data", "classes"), ["g", "top"], "data.classes"),
    (("data", "classes"), [], "data.classes"),
    (("training", "valid_fraction"), 0.0, "training.valid_fraction"),
    (("training", "optimizer"), "sgd", "training.optimizer"),
    (("training", "grad_clip_norm"), 0.0, "training.grad_clip_norm"),
    (("embedding", "time_dims"), [], "embedding.time_dims"),
    (("name",), "", "name"),
]


@pytest.mark.parametrize(
    "keys, value, key", BAD, ids=[f"{b[2]}={'DELETE' if b[1] is DELETE else json.dumps(b[1])}" for b in BAD]
)
def test_invalid_config_names_key_and_file(tmp_path, keys, value, key):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_mutate(_base(), keys, value)))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == key
    assert str(path) in str(info.value) and key in str(info.value)


def test_unmodified_base_is_valid():
    # Guards the parametrised failures above: they must fail because of the mutation, not the base.
    config_from_dict(_base())


def test_a_config_from_before_jet_transform_loads_with_the_quantile_transform():
    # Old runs' config.json files lack the key; their preprocessing.json says how they normalised.
    assert (
        config_from_dict(_mutate(_base(), ("data", "jet_transform"), DELETE)).data.jet_transform == "quantile"
    )
    assert config_from_dict(_base()).data.jet_transform == _base()["data"]["jet_transform"]


def test_a_config_from_before_pt_feature_loads_with_fpcds_feature():
    assert "pt_feature" not in _base()["data"]  # configs/quick.json predates the key
    assert config_from_dict(_base()).data.pt_feature == "log1m"
    assert config_from_dict(_mutate(_base(), ("data", "pt_feature"), "log")).data.pt_feature == "log"


def test_a_config_from_before_pt_sum_loads_with_fpcds_four_jet_features():
    assert "pt_sum" not in _base()["data"]
    assert config_from_dict(_base()).data.pt_sum is False
    assert config_from_dict(_mutate(_base(), ("data", "pt_sum"), True)).data.pt_sum is True


def test_a_config_from_before_constituent_mass_loads_without_it():
    assert "constituent_mass" not in _base()["data"]
    assert config_from_dict(_base()).data.constituent_mass is False
    changed = _mutate(_base(), ("data", "constituent_mass"), True)
    assert config_from_dict(changed).data.constituent_mass is True


def test_a_config_from_before_the_sampler_key_samples_with_ddim():
    assert "sampler" not in _base()["sampling"]
    assert config_from_dict(_base()).sampling.sampler == "ddim"
    changed = _mutate(_base(), ("sampling", "sampler"), "dpm++2m")
    assert config_from_dict(changed).sampling.sampler == "dpm++2m"


def test_null_grad_clip_norm_is_allowed():
    cfg = config_from_dict(_mutate(_base(), ("training", "grad_clip_norm"), None))
    assert cfg.training.grad_clip_norm is None


def test_integer_accepted_for_float_field():
    cfg = config_from_dict(_mutate(_base(), ("embedding", "fourier_scale"), 16))
    assert cfg.embedding.fourier_scale == 16.0 and isinstance(cfg.embedding.fourier_scale, float)


def test_malformed_json_names_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"name": "x",')
    with pytest.raises(ConfigError, match="broken.json"):
        load_config(path)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_save_load_round_trip(tmp_path, path):
    cfg = load_config(path)
    out = tmp_path / "sub" / "saved.json"
    save_config(cfg, out)
    assert load_config(out) == cfg
    assert config_from_dict(json.loads(json.dumps(config_to_dict(cfg)))) == cfg
    assert [p.name for p in out.parent.iterdir()] == ["saved.json"]  # no temporary file left behind


def test_edited_config_is_revalidated_before_saving(tmp_path):
    cfg = load_config(CONFIG_DIR / "quick.json")
    cfg.training.epochs = 3  # a valid override is kept
    assert validate_config(cfg).training.epochs == 3
    cfg.particle_net.num_heads = 5
    out = tmp_path / "edited.json"
    with pytest.raises(ConfigError) as info:
        save_config(cfg, out)
    assert info.value.key == "particle_net.num_heads" and str(out) in str(info.value)
    assert not out.exists()
