"""The fast sampling paths: equal-size comparison config, fused inference layers, mixed precision, XLA.

Speed itself is measured by benchmarks (BENCHMARKS.md), never here; these tests check that every fast
path computes the same function (within a stated tolerance) with the same number of network calls.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from gsgm.config import ConfigError, config_from_dict, config_to_dict, load_config
from gsgm.diffusion import VDenoiser, VPCosineSchedule, ddim_sample
from gsgm.diffusion.point_cloud import sample_point_clouds
from gsgm.families.fpcd import build_fpcd_networks, build_model
from gsgm.generation.jets import mixed_precision_copy, sampling_denoisers
from gsgm.models.particle_transformer import (
    FlattenParticles,
    ParticleAttentionMask,
    TransformerEncoderBlock,
    UnflattenParticles,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
# Trainable parameters of the released GSGM code (scripts/GSGM.py + deepsets.py at config_jet.json),
# counted layer by layer from that code and confirmed by building it (benchmarks/external_original_gsgm.py).
ORIGINAL_PARTICLE_PARAMETERS = 1_035_779
ORIGINAL_JET_PARAMETERS = 894_532


def trainable(network: keras.Model) -> int:
    return sum(int(w.shape.num_elements()) for w in network.trainable_weights)


def randomise(network: keras.Model, seed: int, scale: float = 0.2) -> None:
    """Non-zero weights everywhere (the output layers start at zero, which would hide every error)."""
    rng = np.random.default_rng(seed)
    for weight in network.trainable_weights:
        weight.assign(scale * rng.standard_normal(weight.shape).astype(np.float32))


def quick_model(seed: int = 0):
    cfg = load_config(CONFIGS / "quick.json")
    model = build_model(cfg, cfg.data.num_particles, seed=seed)
    # The EMA copies (what sampling uses) hold non-trainable weights: randomise the raw networks and
    # copy them over.
    randomise(model.jet_net, seed)
    randomise(model.particle_net, seed + 1, scale=0.1)
    model.ema_jet_net.set_weights(model.jet_net.get_weights())
    model.ema_particle_net.set_weights(model.particle_net.get_weights())
    assert float(tf.reduce_max(tf.abs(model.ema_particle_net.weights[-1]))) > 0
    return cfg, model


def test_original_size_config_matches_the_original_parameter_counts_within_5_percent():
    jet_net, particle_net = build_fpcd_networks(load_config(CONFIGS / "fpcd_original_size.json"))
    assert trainable(particle_net) == pytest.approx(ORIGINAL_PARTICLE_PARAMETERS, rel=0.05)
    assert trainable(jet_net) == pytest.approx(ORIGINAL_JET_PARAMETERS, rel=0.05)
    # The released-size config does not (the reason this config exists).
    jet_net, particle_net = build_fpcd_networks(load_config(CONFIGS / "fpcd_released.json"))
    assert trainable(particle_net) < 0.9 * ORIGINAL_PARTICLE_PARAMETERS
    assert trainable(jet_net) < 0.6 * ORIGINAL_JET_PARAMETERS


@pytest.mark.parametrize("num_heads", [1, 2, 4])
def test_fused_attention_equals_keras_multi_head_attention(num_heads):
    rng = np.random.default_rng(num_heads)
    batch, particles, width = 6, 11, 16
    x = tf.constant(rng.standard_normal((batch, particles, width)).astype(np.float32))
    counts = np.array([1, 3, 11, 7, 5, 11])
    mask = (np.arange(particles)[None, :] < counts[:, None]).astype(np.float32)[..., None]
    attention_mask = ParticleAttentionMask()(tf.constant(mask))
    block = TransformerEncoderBlock(width, num_heads, 24, dropout=0.1)
    block(x, attention_mask)
    for weight in block.attention.weights:
        weight.assign(0.3 * rng.standard_normal(weight.shape).astype(np.float32))
    reference = block.attention(x, x, attention_mask=attention_mask, training=False)
    fused = block.fused_self_attention(x, attention_mask)
    np.testing.assert_allclose(fused.numpy(), reference.numpy(), rtol=1e-5, atol=1e-5)
    # no mask (the phase-space transformer: every particle is real)
    unmasked = block.attention(x, x, attention_mask=None, training=False)
    fused_unmasked = block.fused_self_attention(x, None)
    np.testing.assert_allclose(fused_unmasked.numpy(), unmasked.numpy(), rtol=1e-5, atol=1e-5)
    # Inference uses the fused path; the reference path is what training (with dropout) runs.
    normed = block.norm_attention(x)
    expected = x + block.attention(normed, normed, attention_mask=attention_mask, training=False)
    y = block.norm_ffn(expected)
    expected = expected + block.ffn_out(block.ffn_in(y))
    np.testing.assert_allclose(
        block(x, attention_mask, training=False).numpy(), expected.numpy(), rtol=1e-5, atol=1e-5
    )


def test_flattened_dense_equals_keras_dense_on_three_axes():
    rng = np.random.default_rng(3)
    x = tf.constant(rng.standard_normal((4, 9, 5)).astype(np.float32))
    dense = keras.layers.Dense(7, activation="gelu")
    dense(x)
    dense.set_weights([0.5 * rng.standard_normal(w.shape).astype(np.float32) for w in dense.weights])
    fast = UnflattenParticles()([dense(FlattenParticles()(x)), x])
    assert fast.shape == (4, 9, 7)
    np.testing.assert_allclose(fast.numpy(), dense(x).numpy(), rtol=1e-6, atol=1e-6)


def counting(denoiser, counter: tf.Variable):
    """``denoiser`` that adds 1 to ``counter`` at every evaluation (inside the compiled loop too)."""

    def counted(z, t, **cond):
        counter.assign_add(1)
        return denoiser(z, t, **cond)

    return counted


def sample(model, jet_denoiser, particle_denoiser, jit_compile=False, steps=4, buckets=2):
    num_particles = 30
    # Two multiplicity groups (30 and 3-6 particles): the two buckets are kept, so each stage's steps
    # are counted per bucket.
    counts = np.array([30, 4, 30, 3, 30, 6, 30, 5, 30, 4, 30, 6])
    mask = (np.arange(num_particles)[None, :] < counts[:, None]).astype(np.float32)
    onehot = np.eye(5, dtype=np.float32)[np.arange(12) % 5]
    return sample_point_clouds(
        jet_denoiser,
        particle_denoiser,
        lambda jets: mask,
        onehot,
        num_particles=num_particles,
        num_particle_features=3,
        num_jet_features=4,
        num_steps=steps,
        seed=11,
        schedule=model.schedule,
        num_buckets=buckets,
        jit_compile=jit_compile,
    )


@pytest.mark.parametrize("precision, tolerance", [("bfloat16", 0.05), ("float16", 0.01)])
def test_mixed_precision_samples_stay_close_to_float32_with_the_same_steps(precision, tolerance):
    """Tolerance: max |difference| over every jet and particle feature, relative to the samples' spread.

    bfloat16 carries 8 significant bits (~2.4 digits): after 4 DDIM steps of a randomised network the
    samples differ from float32 by a few per mille of their spread (bound 5 %); float16 (11 bits) by
    about eight times less (bound 1 %).
    """
    _, model = quick_model()
    counters = {name: tf.Variable(0, dtype=tf.int64) for name in ("jet32", "part32", "jet16", "part16")}
    jets32, parts32, mask = sample(
        model,
        counting(model.jet_denoiser, counters["jet32"]),
        counting(model.particle_denoiser, counters["part32"]),
    )
    jet16, part16 = sampling_denoisers(model, precision)
    assert sampling_denoisers(model, precision) == (jet16, part16)  # cached: traced once per model
    jets16, parts16, _ = sample(
        model, counting(jet16, counters["jet16"]), counting(part16, counters["part16"])
    )
    assert int(counters["jet16"].numpy()) == int(counters["jet32"].numpy()) == 4
    assert int(counters["part16"].numpy()) == int(counters["part32"].numpy()) == 4 * 2  # 2 buckets
    assert jets16.dtype == np.float32 and parts16.dtype == np.float32
    assert np.max(np.abs(jets16 - jets32)) <= tolerance * np.std(jets32)
    real = mask.astype(bool)
    assert np.max(np.abs(parts16[real] - parts32[real])) <= tolerance * np.std(parts32[real])
    assert np.all(parts16[~real] == 0)
    # Not identical: the 16-bit path really computes in 16 bits.
    assert np.max(np.abs(parts16[real] - parts32[real])) > 0


def test_mixed_copy_keeps_weights_time_features_and_outputs_in_float32():
    _, model = quick_model()
    copy = mixed_precision_copy(model.ema_particle_net, "bfloat16")
    for original, copied in zip(model.ema_particle_net.weights, copy.weights, strict=True):
        assert copied.dtype == "float32"
        np.testing.assert_array_equal(copied.numpy(), original.numpy())
    policies = {layer.name: layer.dtype_policy.name for layer in copy.layers}
    assert policies["part_fourier"] == "float32" and policies["part_output"] == "float32"
    assert policies["part_head_dense"] == "mixed_bfloat16"
    block = copy.get_layer("part_transformer0")
    assert block.ffn_in.dtype_policy.name == "mixed_bfloat16"
    with pytest.raises(ValueError, match="precision must be one of"):
        mixed_precision_copy(model.ema_particle_net, "int8")


def test_xla_compiled_sampling_agrees_with_the_graph_loop_with_the_same_steps():
    _, model = quick_model(seed=2)
    counters = [tf.Variable(0, dtype=tf.int64) for _ in range(4)]
    plain = sample(
        model, counting(model.jet_denoiser, counters[0]), counting(model.particle_denoiser, counters[1])
    )
    # Distinct denoiser objects: the compiled-loop cache is per denoiser and compile mode.
    xla = sample(
        model,
        counting(model.jet_denoiser, counters[2]),
        counting(model.particle_denoiser, counters[3]),
        jit_compile=True,
    )
    assert [int(c.numpy()) for c in counters] == [4, 8, 4, 8]
    for a, b in zip(plain, xla, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)


def test_xla_one_step_on_a_single_denoiser():
    schedule = VPCosineSchedule()
    net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    denoiser = VDenoiser(lambda z, t: net(z), schedule)
    x_T = tf.random.stateless_normal([8, 3], seed=[1, 2])
    np.testing.assert_allclose(
        ddim_sample(denoiser, x_T, schedule, 3, jit_compile=True).numpy(),
        ddim_sample(denoiser, x_T, schedule, 3).numpy(),
        rtol=1e-5,
        atol=1e-6,
    )


def test_sampling_options_are_optional_validated_config_keys():
    data = json.loads((CONFIGS / "quick.json").read_text())
    assert "precision" not in data["sampling"]  # an older file: float32 without XLA
    cfg = config_from_dict(data, "quick.json")
    assert (cfg.sampling.precision, cfg.sampling.jit_compile) == ("float32", False)
    data["sampling"].update(precision="bfloat16", jit_compile=True)
    again = config_from_dict(config_to_dict(config_from_dict(data)))
    assert (again.sampling.precision, again.sampling.jit_compile) == ("bfloat16", True)
    data["sampling"]["precision"] = "float8"
    with pytest.raises(ConfigError, match="sampling.precision"):
        config_from_dict(data, "x.json")


def test_generate_jets_uses_the_configured_precision(tmp_path):
    from gsgm.data.jetnet_format import JET_CLASSES
    from gsgm.data.loading import load_jets, resolve_data_dir
    from gsgm.data.preprocessing import JetPreprocessor
    from gsgm.generation.jets import generate_jets

    cfg, model = quick_model()
    sample_ = load_jets(resolve_data_dir("builtin"), list(JET_CLASSES), cfg.data.num_particles)
    preprocessor = JetPreprocessor.fit(sample_)
    out = {}
    for precision in ("float32", "bfloat16"):
        cfg.sampling.precision = precision
        out[precision] = generate_jets(model, preprocessor, cfg, 6, ["t"], num_steps=2, seed=3)["t"]
    # Same multiplicities up to rare boundary flips, close kinematics; not bit-identical.
    parts32, jets32 = out["float32"]
    parts16, jets16 = out["bfloat16"]
    assert jets16.shape == jets32.shape and parts16.shape == parts32.shape
    assert not np.array_equal(jets16, jets32)
    # Close on the scale of the physical jet eta spread (the untrained model's jets pile up at the fit
    # range's ends, where the quantile map is steep, so six of them have no spread of their own).
    truth_eta_spread = np.std(sample_.jets[sample_.labels == JET_CLASSES.index("t"), 1])
    np.testing.assert_allclose(jets16[:, 1], jets32[:, 1], atol=0.05 * truth_eta_spread)


@pytest.mark.slow
def test_bench_table5_runs_small_and_its_output_draws(tmp_path):
    out = tmp_path / "table5.json"
    command = [
        sys.executable, "benchmarks/bench_table5.py", "--sizes", "released", "--particles", "30",
        "--steps", "8,2,1", "--max-measured-steps", "2", "--batch", "4", "--repeats", "1",
        "--variants", "float32,bfloat16", "--json", str(out),
    ]  # fmt: skip
    env = {**_env(), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    records = json.loads(out.read_text())
    assert [(r["variant"], r["steps"], r["measured"]) for r in records] == [
        ("float32", 8, False), ("float32", 2, True), ("float32", 1, True),
        ("bfloat16", 8, False), ("bfloat16", 2, True), ("bfloat16", 1, True),
    ]  # fmt: skip
    assert all(r["device"].startswith(("CPU", "GPU")) and r["batch_size"] == 4 for r in records)
    assert all(r["ms_per_jet"] > 0 for r in records)
    plots = tmp_path / "plots"
    drawn = subprocess.run(
        [sys.executable, "plots/plot_timing.py", "--results", str(out), "--out", str(plots)],
        cwd=ROOT, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    assert any(p.stat().st_size > 1000 for p in plots.iterdir())


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_gsgm_sample_flags_reach_the_fpcd_sampler():
    import inspect

    from gsgm.cli import build_parser
    from gsgm.generation.registry import sampler_for

    args = build_parser().parse_args(
        ["sample", "--run", "r", "--per-class", "2", "--out", "o", "--precision", "bfloat16", "--xla"]
    )
    assert (args.precision, args.jit_compile) == ("bfloat16", True)
    default = build_parser().parse_args(["sample", "--run", "r", "--per-class", "2", "--out", "o"])
    assert (default.precision, default.jit_compile) == (None, None)  # None: the run config decides
    accepted = inspect.signature(sampler_for("fpcd")).parameters
    assert {"precision", "jit_compile"} <= set(accepted)
    bad = ["sample", "--run", "r", "--per-class", "2", "--out", "o", "--precision", "float8"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(bad)
