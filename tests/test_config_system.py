"""The config system itself: strict floats, the family key, load_any_config, new families, layering."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gsgm.config import (
    ConfigError,
    DataConfig,
    FPCDConfig,
    ImagesConfig,
    Section,
    config_class_for,
    config_families,
    config_to_dict,
    images_config_to_dict,
    load_any_config,
    load_config,
    load_images_config,
    register_config_family,
    registry,
    save_any_config,
    save_config,
)
from gsgm.config.base import PositiveInt, invalid

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
_PREFIXES = {"images_": "jet_images", "phase_space": "phase_space", "calo_": "calo", "dis_": "dis"}
FAMILY_OF_FILE = {
    p: next((f for prefix, f in _PREFIXES.items() if p.name.startswith(prefix)), "fpcd")
    for p in CONFIGS.glob("*.json")
}


def _write(path: Path, data: dict) -> Path:
    # json.dumps writes NaN/Infinity for non-finite floats, as a hand-edited file might contain them.
    path.write_text(json.dumps(data))
    return path


def _quick(name: str = "quick.json") -> dict:
    return json.loads((CONFIGS / name).read_text())


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("quick.json", ("training", "learning_rate")),
        ("quick.json", ("embedding", "fourier_scale")),
        ("images_quick.json", ("score", "unet", "dropout")),
        ("images_quick.json", ("noise", "sigma_max")),  # a nullable float
    ],
)
def test_non_finite_floats_are_rejected(tmp_path, name, keys, value):
    data = _quick(name)
    node = data
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value
    path = _write(tmp_path / "c.json", data)
    with pytest.raises(ConfigError) as info:
        load_any_config(path)
    assert info.value.key == ".".join(keys) and "finite" in str(info.value)


@pytest.mark.parametrize("path", sorted(FAMILY_OF_FILE), ids=lambda p: p.stem)
def test_shipped_configs_carry_their_family(path):
    assert json.loads(path.read_text())["family"] == FAMILY_OF_FILE[path]
    family, cfg = load_any_config(path)
    assert family == FAMILY_OF_FILE[path]
    assert isinstance(cfg, config_class_for(family)) and cfg.name == path.stem


def test_saved_configs_carry_the_family_key(tmp_path):
    save_config(load_config(CONFIGS / "quick.json"), tmp_path / "a.json")
    save_any_config(load_images_config(CONFIGS / "images_quick.json"), tmp_path / "b.json")
    assert json.loads((tmp_path / "a.json").read_text())["family"] == "fpcd"
    assert json.loads((tmp_path / "b.json").read_text())["family"] == "jet_images"
    assert "family" not in config_to_dict(load_config(tmp_path / "a.json"))  # file metadata, not a setting


@pytest.mark.parametrize(
    ("name", "family", "loader", "to_dict"),
    [
        ("quick.json", "fpcd", load_config, config_to_dict),
        ("images_quick.json", "jet_images", load_images_config, images_config_to_dict),
    ],
)
def test_files_older_than_the_family_key_are_inferred(tmp_path, name, family, loader, to_dict):
    data = _quick(name)
    del data["family"]
    legacy = _write(tmp_path / "config.json", data)
    assert to_dict(loader(legacy)) == to_dict(loader(CONFIGS / name))
    inferred, cfg = load_any_config(legacy)
    assert inferred == family and to_dict(cfg) == to_dict(loader(legacy))


def test_family_errors(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(CONFIGS / "images_quick.json")  # a jet-image file where an FPCD one is needed
    assert info.value.key == "family" and "'fpcd'" in str(info.value)
    data = _quick()
    data["family"] = "calorimeter"
    with pytest.raises(ConfigError, match="must be one of") as info:
        load_any_config(_write(tmp_path / "unknown.json", data))
    assert info.value.key == "family"
    with pytest.raises(ConfigError, match="missing key") as info:
        load_any_config(_write(tmp_path / "bare.json", {"name": "x", "description": ""}))
    assert info.value.key == "family"
    with pytest.raises(ConfigError, match="JSON object"):
        load_any_config(_write(tmp_path / "list.json", [1, 2]))


def test_nested_list_error_is_translated(tmp_path):
    data = _quick("images_quick.json")
    data["score"]["unet"]["channel_multipliers"] = [1, "2"]
    path = _write(tmp_path / "c.json", data)
    with pytest.raises(ConfigError) as info:
        load_images_config(path)
    assert info.value.key == "score.unet.channel_multipliers[1]" and info.value.source == str(path)
    assert str(info.value) == f'{path}: score.unet.channel_multipliers[1]: expected an integer, got "2"'
    data["score"]["unet"]["channel_multipliers"] = [1, -2]
    with pytest.raises(ConfigError, match=r"channel_multipliers\[1\]: must be > 0, got -2"):
        load_images_config(_write(path, data))


def test_python_defaults_never_fill_a_file(tmp_path):
    assert DataConfig().num_particles == 30  # programmatic use keeps the defaults
    data = _quick()
    del data["data"]["recenter"]
    with pytest.raises(ConfigError, match="missing key") as info:
        load_config(_write(tmp_path / "c.json", data))
    assert info.value.key == "data.recenter"


def test_a_new_family_registers_with_one_call(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))  # leave the real registry alone

    class ToyNetwork(Section):
        width: PositiveInt = 8
        depths: list[PositiveInt] = [2]

        def check(self) -> None:
            if self.width % 2:
                raise invalid("width", "must be even")

    class ToyConfig(Section):
        name: str
        network: ToyNetwork

    register_config_family("toy", ToyConfig)
    assert "toy" in config_families() and config_class_for("toy") is ToyConfig

    toy = {"family": "toy", "name": "t", "network": {"width": 4, "depths": [1]}}
    path = _write(tmp_path / "toy.json", toy)
    family, cfg = load_any_config(path)
    assert (family, cfg.network.width) == ("toy", 4)
    cfg.network.width = 6  # still a mutable attribute object, re-validated on saving
    save_any_config(cfg, tmp_path / "saved.json")
    assert load_any_config(tmp_path / "saved.json") == ("toy", cfg)

    for network, key, message in (
        ({"width": 3, "depths": [1]}, "network.width", "even"),
        ({"width": 4, "depths": [1, True]}, "network.depths[1]", "integer"),
        ({"width": 4}, "network.depths", "missing key"),
        ({"width": 4, "depths": [1], "heigth": 2}, "network.heigth", "unknown key"),
    ):
        bad = _write(tmp_path / "bad.json", {"family": "toy", "name": "t", "network": network})
        with pytest.raises(ConfigError, match=message) as info:
            load_any_config(bad)
        assert info.value.key == key
    with pytest.raises(ValueError, match="already registered"):
        register_config_family("toy", FPCDConfig)


def test_edited_images_config_is_revalidated(tmp_path):
    cfg = load_images_config(CONFIGS / "images_quick.json")
    cfg.score.unet.dropout = float("nan")
    with pytest.raises(ConfigError) as info:
        save_any_config(cfg, tmp_path / "x.json")
    assert info.value.key == "score.unet.dropout" and not (tmp_path / "x.json").exists()
    assert isinstance(cfg, ImagesConfig)


def test_config_is_the_bottom_layer():
    code = (
        "import sys, gsgm.config; "
        "print(sorted(m for m in sys.modules if m.startswith('gsgm.') and not "
        "m.startswith(('gsgm.config', 'gsgm.utils'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"
