"""FPCD networks: shapes, symmetry, masking, conditioning and the paper's layer sizes."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from gsgm.config import EmbeddingConfig, JetNetConfig, ParticleNetConfig, load_config
from gsgm.families.fpcd import build_fpcd_networks
from gsgm.models import build_jet_net, build_particle_net
from gsgm.models.particle_transformer import ParticleAttentionMask, TransformerEncoderBlock

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
P = 12  # particle slots in the tiny-model tests
TINY_EMBEDDING = EmbeddingConfig(fourier_features=8, fourier_scale=4.0, time_dims=[8, 16], cond_dim=16)
TINY_JET = JetNetConfig(num_blocks=2, width=16, leaky_slope=0.01, dropout=0.0)
TINY_PARTICLE = ParticleNetConfig(
    embed_dim=16, num_transformer_blocks=2, num_heads=2, ffn_dim=32, output_hidden_dim=16, dropout=0.0
)


def _randomise_output(model: keras.Model, layer_name: str, seed: int = 0) -> None:
    """Replace the zero-initialised output kernel, otherwise every output is trivially 0."""
    layer = model.get_layer(layer_name)
    rng = np.random.default_rng(seed)
    layer.kernel.assign(rng.normal(0, 1, layer.kernel.shape).astype("float32"))
    layer.bias.assign(rng.normal(0, 1, layer.bias.shape).astype("float32"))


@pytest.fixture(scope="module")
def jet_net() -> keras.Model:
    keras.utils.set_random_seed(1)
    model = build_jet_net(TINY_JET, 5, embedding=TINY_EMBEDDING)
    _randomise_output(model, "jet_output")
    return model


@pytest.fixture(scope="module")
def particle_net() -> keras.Model:
    keras.utils.set_random_seed(2)
    model = build_particle_net(TINY_PARTICLE, P, embedding=TINY_EMBEDDING)
    _randomise_output(model, "part_output")
    return model


def _jet_inputs(b: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "z": rng.normal(size=(b, 4)).astype("float32"),
        "t": rng.uniform(size=(b,)).astype("float32"),
        "class_onehot": np.eye(5, dtype="float32")[rng.integers(0, 5, b)],
    }


def _particle_inputs(counts=(3, 12, 7, 1, 5), seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs for jets with ``counts`` real particles; padded slots hold zeros, like the data."""
    rng = np.random.default_rng(seed)
    b = len(counts)
    mask = (np.arange(P)[None, :] < np.asarray(counts)[:, None]).astype("float32")[..., None]
    return {
        "z": rng.normal(size=(b, P, 3)).astype("float32") * mask,
        "t": rng.uniform(size=(b,)).astype("float32"),
        "jets": rng.normal(size=(b, 4)).astype("float32"),
        "class_onehot": np.eye(5, dtype="float32")[rng.integers(0, 5, b)],
        "mask": mask,
    }


def _run(model: keras.Model, inputs: dict[str, np.ndarray]) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(inputs, training=False))


# ---------------------------------------------------------------- shapes and time input


def test_jet_net_shape_and_time_rank(jet_net):
    x = _jet_inputs()
    out = _run(jet_net, x)
    assert out.shape == (6, 4) and out.dtype == np.float32
    np.testing.assert_allclose(_run(jet_net, {**x, "t": x["t"][:, None]}), out, atol=1e-6)


def test_particle_net_shape_and_time_rank(particle_net):
    x = _particle_inputs()
    out = _run(particle_net, x)
    assert out.shape == (5, P, 3) and out.dtype == np.float32
    np.testing.assert_allclose(_run(particle_net, {**x, "t": x["t"][:, None]}), out, atol=1e-6)


def test_particle_net_accepts_any_number_of_slots():
    model = build_particle_net(TINY_PARTICLE, None, embedding=TINY_EMBEDDING)
    _randomise_output(model, "part_output")
    x = _particle_inputs()
    out = _run(model, x)
    # Dropping trailing slots that are padded in every jet must not change anything.
    x_short = {**x, "z": x["z"][:, :12], "mask": x["mask"][:, :12]}
    assert out.shape == (5, P, 3)
    np.testing.assert_allclose(_run(model, x_short), out, atol=1e-5)


def test_untrained_outputs_are_zero():
    # The output layers start at zero, so an untrained network predicts v = 0.
    jet = build_jet_net(TINY_JET, embedding=TINY_EMBEDDING)
    part = build_particle_net(TINY_PARTICLE, P, embedding=TINY_EMBEDDING)
    assert np.all(_run(jet, _jet_inputs()) == 0)
    assert np.all(_run(part, _particle_inputs()) == 0)


# ---------------------------------------------------------------- symmetry and masking


def test_particle_net_permutation_equivariant(particle_net):
    x = _particle_inputs()
    out = _run(particle_net, x)
    rng = np.random.default_rng(5)
    # Permute the real particles of each jet among themselves; padded slots stay at the end.
    perm = np.tile(np.arange(P), (5, 1))
    for i, n in enumerate((3, 12, 7, 1, 5)):
        perm[i, :n] = rng.permutation(n)
    take = lambda a: np.take_along_axis(a, perm[:, :, None], axis=1)  # noqa: E731
    out_perm = _run(particle_net, {**x, "z": take(x["z"]), "mask": take(x["mask"])})
    np.testing.assert_allclose(out_perm, take(out), atol=1e-5)


def test_particle_net_equivariant_to_slot_order(particle_net):
    # Padded slots interleaved with real ones: the mask, not the slot position, decides.
    x = _particle_inputs()
    out = _run(particle_net, x)
    perm = np.random.default_rng(6).permutation(P)
    out_perm = _run(particle_net, {**x, "z": x["z"][:, perm], "mask": x["mask"][:, perm]})
    np.testing.assert_allclose(out_perm, out[:, perm], atol=1e-5)


def test_padded_particles_do_not_influence_real_ones(particle_net):
    x = _particle_inputs()
    out = _run(particle_net, x)
    noise = np.random.default_rng(7).normal(0, 3, x["z"].shape).astype("float32")
    z_garbage = np.where(x["mask"] > 0, x["z"], noise)
    out_garbage = _run(particle_net, {**x, "z": z_garbage})
    real = np.broadcast_to(x["mask"] > 0, out.shape)
    assert np.abs(out[real]).min() > 0  # real outputs are not trivially zero
    np.testing.assert_allclose(out_garbage[real], out[real], atol=1e-5)
    assert np.all(out_garbage[~real] == 0.0) and np.all(out[~real] == 0.0)


def test_real_particles_interact(particle_net):
    # Attention must let real particles see each other (a mask that blocks everything would also pass
    # the padding test above).
    x = _particle_inputs(counts=(6,))
    out = _run(particle_net, x)
    z = x["z"].copy()
    z[0, 0] += 1.0
    out2 = _run(particle_net, {**x, "z": z})
    assert np.abs(out2[0, 1:6] - out[0, 1:6]).max() > 1e-4


def test_jet_without_particles_is_finite_and_zero(particle_net):
    x = _particle_inputs(counts=(0, 4))
    out = _run(particle_net, x)
    assert np.all(np.isfinite(out))
    assert np.all(out[0] == 0.0)


def test_attention_mask_rows_never_empty():
    mask = (np.arange(4)[None, :] < np.array([[0], [2], [4]])).astype("float32")[..., None]
    att = keras.ops.convert_to_numpy(ParticleAttentionMask()(mask))
    assert att.dtype == bool and att.shape == (3, 4, 4)
    assert att.any(axis=-1).all()  # every query (even padded, even in an empty jet) has a key
    real = mask[..., 0] > 0
    # A real query sees exactly the real keys; a padded query sees only itself.
    np.testing.assert_array_equal(att[real], np.repeat(real, real.sum(1), axis=0))
    for b, i in zip(*np.nonzero(~real), strict=True):
        np.testing.assert_array_equal(att[b, i], np.arange(4) == i)


# ---------------------------------------------------------------- conditioning


def test_jet_net_depends_on_time_and_class(jet_net):
    x = _jet_inputs()
    out = _run(jet_net, x)
    assert np.abs(_run(jet_net, {**x, "t": (x["t"] + 0.3) % 1.0}) - out).min() > 1e-5
    shifted = np.roll(x["class_onehot"], 1, axis=-1)
    assert np.abs(_run(jet_net, {**x, "class_onehot": shifted}) - out).min() > 1e-5
    assert np.abs(_run(jet_net, {**x, "z": x["z"] + 0.5}) - out).min() > 1e-5


@pytest.mark.parametrize("name", ["t", "jets", "class_onehot"])
def test_particle_net_depends_on_conditions(particle_net, name):
    x = _particle_inputs()
    out = _run(particle_net, x)
    changed = {
        "t": (x["t"] + 0.3) % 1.0,
        "jets": x["jets"] + 1.0,
        "class_onehot": np.roll(x["class_onehot"], 1, -1),
    }
    out2 = _run(particle_net, {**x, name: changed[name]})
    real = np.broadcast_to(x["mask"] > 0, out.shape)
    assert np.abs(out2[real] - out[real]).min() > 1e-6


# ---------------------------------------------------------------- Fourier features and saving


def test_fourier_frequencies_fixed_and_seeded():
    def frequencies(seed):
        model = build_jet_net(TINY_JET, embedding=TINY_EMBEDDING, seed=seed)
        layer = model.get_layer("jet_fourier")
        assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 1
        return keras.ops.convert_to_numpy(layer.frequencies)

    np.testing.assert_array_equal(frequencies(3), frequencies(3))
    assert not np.allclose(frequencies(3), frequencies(4))
    assert frequencies(3).std() == pytest.approx(TINY_EMBEDDING.fourier_scale, rel=0.6)


def test_keras_save_load_round_trip(tmp_path, particle_net, jet_net):
    x, xj = _particle_inputs(), _jet_inputs()
    for model, inputs in ((particle_net, x), (jet_net, xj)):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        np.testing.assert_allclose(_run(loaded, inputs), _run(model, inputs), atol=1e-6)


# ---------------------------------------------------------------- shipped configs build the right sizes


def _kernel_shape(model: keras.Model, name: str) -> tuple[int, ...]:
    return tuple(model.get_layer(name).kernel.shape)


def _blocks(model: keras.Model) -> list[TransformerEncoderBlock]:
    return [layer for layer in model.layers if isinstance(layer, TransformerEncoderBlock)]


@pytest.mark.parametrize("name, num_particles", [("fpcd_jetnet30", 30), ("fpcd_jetnet150", 150)])
def test_paper_config_builds_paper_sizes(name, num_particles):
    jet, part = build_fpcd_networks(load_config(CONFIG_DIR / f"{name}.json"))

    # Embedding: Fourier features -> 32 -> 64, then [time, conditions] -> 64.
    assert _kernel_shape(jet, "jet_time_dense0") == (64, 32)
    assert _kernel_shape(jet, "jet_time_dense1") == (32, 64)
    assert _kernel_shape(jet, "jet_cond_dense") == (64 + 5, 64)
    assert _kernel_shape(part, "part_cond_dense") == (64 + 5 + 4, 64)

    # Jet ResNet: 5 residual blocks, every layer 512 wide, skip joined to a two-layer network.
    assert _kernel_shape(jet, "jet_input_dense") == (4 + 64, 512)
    for b in range(5):
        for layer in (f"jet_block{b}_skip", f"jet_block{b}_dense0", f"jet_block{b}_dense1"):
            assert _kernel_shape(jet, layer) == (512, 512)
    with pytest.raises(ValueError):
        jet.get_layer("jet_block5_skip")
    assert _kernel_shape(jet, "jet_head_dense") == (512, 512)
    assert _kernel_shape(jet, "jet_output") == (512, 4)

    # Particle net: per-particle Dense(64) of [particle, embedding], 8 blocks, Dense(64), Dense(3).
    assert _kernel_shape(part, "part_input_dense") == (3 + 64, 64)
    blocks = _blocks(part)
    assert len(blocks) == 8
    for block in blocks:
        assert tuple(block.attention.query_dense.kernel.shape) == (64, 2, 32)
        assert tuple(block.ffn_in.kernel.shape) == (64, 128)
    assert _kernel_shape(part, "part_head_dense") == (64, 64)
    assert _kernel_shape(part, "part_output") == (64, 3)
    assert part.input["z"].shape == (None, num_particles, 3)


def test_released_config_builds_released_sizes():
    jet, part = build_fpcd_networks(load_config(CONFIG_DIR / "fpcd_released.json"))
    assert _kernel_shape(jet, "jet_block1_dense1") == (256, 256)
    with pytest.raises(ValueError):
        jet.get_layer("jet_block2_skip")
    blocks = _blocks(part)
    assert len(blocks) == 6
    assert tuple(blocks[0].attention.query_dense.kernel.shape) == (128, 2, 64)
    assert _kernel_shape(part, "part_time_dense0") == (64, 128)


def test_build_fpcd_networks_slot_override():
    cfg = load_config(CONFIG_DIR / "quick.json")
    _, part = build_fpcd_networks(cfg)
    assert part.input["z"].shape == (None, cfg.data.num_particles, 3)
    _, part = build_fpcd_networks(cfg, 150)
    assert part.input["z"].shape == (None, 150, 3)
