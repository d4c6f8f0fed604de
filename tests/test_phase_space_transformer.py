"""The permutation-equivariant phase-space transformer (N = 10 score network) and its config switch."""

from __future__ import annotations

import numpy as np
import pytest

from gsgm.config import ConfigError, validate_section
from gsgm.config.phase_space import PhaseSpaceModel
from gsgm.models.phase_space_transformer import build_phase_space_transformer


def _randomise_output_layer(model, seed: int) -> None:
    # the output layer starts at zero (an untrained model predicts 0): give it weights to test with
    rng = np.random.default_rng(seed)
    for weight in model.get_layer("output").weights:
        weight.assign(rng.normal(size=weight.shape).astype("float32"))


def test_permuting_the_particles_permutes_the_output():
    model = build_phase_space_transformer(10, width=32, depth=2, num_heads=4, time_dim=16, seed=3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 10, 3)).astype("float32")
    t = rng.random(8).astype("float32")
    assert np.abs(np.asarray(model({"x": x, "t": t}))).max() == 0.0  # zero-initialised output
    _randomise_output_layer(model, 1)
    out = np.asarray(model({"x": x, "t": t}))
    assert out.shape == (8, 10, 3) and np.abs(out).max() > 1e-2
    for _ in range(3):
        perm = rng.permutation(10)
        np.testing.assert_allclose(np.asarray(model({"x": x[:, perm], "t": t})), out[:, perm], atol=1e-5)
    # it is not trivially per-particle: moving one particle changes the others' outputs
    moved = x.copy()
    moved[:, 0] += 1.0
    assert np.abs(np.asarray(model({"x": moved, "t": t}))[:, 1:] - out[:, 1:]).max() > 1e-4
    # and the time enters
    assert np.abs(np.asarray(model({"x": x, "t": t[::-1].copy()})) - out).max() > 1e-4


def test_same_seed_same_weights_and_any_number_of_particles():
    a = build_phase_space_transformer(None, width=16, depth=1, num_heads=2, time_dim=8, seed=5)
    b = build_phase_space_transformer(None, width=16, depth=1, num_heads=2, time_dim=8, seed=5)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    x = np.zeros((2, 4, 3), "float32")
    assert tuple(a({"x": x, "t": np.zeros(2, "float32")}).shape) == (2, 4, 3)
    with pytest.raises(ValueError, match="multiple of num_heads"):
        build_phase_space_transformer(10, width=30, num_heads=4)


def test_the_config_chooses_the_network_and_checks_the_heads():
    model = validate_section(PhaseSpaceModel, {"network": "transformer", "width": 32, "num_heads": 4},
                             require_all_keys=False)  # fmt: skip
    assert model.network == "transformer"
    with pytest.raises(ConfigError, match=r"num_heads"):
        validate_section(PhaseSpaceModel, {"network": "transformer", "width": 30, "num_heads": 4},
                         require_all_keys=False)  # fmt: skip
    with pytest.raises(ConfigError, match=r"network"):
        validate_section(PhaseSpaceModel, {"network": "pet"}, require_all_keys=False)
