"""Record tests/data/redesign_reference.npz: outputs of the pre-redesign diffusion code (issue 11).

Run once, on the code *before* the diffusion redesign (parent of the commit that adds this file is the
code it describes), from the repository root::

    TF_CPP_MIN_LOG_LEVEL=2 PYTHONPATH=$PWD python tests/data/make_redesign_reference.py
    TF_CPP_MIN_LOG_LEVEL=2 PYTHONPATH=$PWD python tests/data/make_redesign_reference.py --layouts

It calls the old API (``ddim_sample(v_denoiser, ...)``, ``distillation_targets(teacher, z_t, t, t_mid, s)``,
``sample_pc(score_fn, ...)``, ``sample_consistency(f, ...)``...), which the redesign replaced, so it no
longer runs on later commits; it stays as the record of how every array was made.
``tests/test_redesign_reference.py`` recomputes each array with the new API from the same inputs
(``redesign_inputs.py``) and compares.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import redesign_inputs as ri  # noqa: E402
from gsgm.diffusion.ve_sde import sample_pc, sample_probability_flow, ve_sigmas  # noqa: E402

from gsgm.diffusion import ddim_sample, diffuse  # noqa: E402
from gsgm.diffusion.consistency import consistency_sampling_sigmas, sample_consistency  # noqa: E402
from gsgm.diffusion.distillation import distillation_targets, student_step_times  # noqa: E402
from gsgm.diffusion.point_cloud import sample_point_clouds  # noqa: E402
from gsgm.training.distillation_model import DistillationModel  # noqa: E402


def main(path: Path) -> None:
    out: dict[str, np.ndarray] = {}
    # --- DDIM with the exact Gaussian v-denoiser (VP cosine) -----------------------------------------
    noise = ri.gaussian_noise((16, 3), 1)
    for steps in (1, 8):
        out[f"ddim/exact/{steps}"] = ddim_sample(ri.exact_v_denoiser, noise, steps).numpy()
    pc_noise, pc_mask = ri.gaussian_noise((8, 5, 2), 2), ri.random_mask(8, 5, 3)
    out["ddim/exact_masked/8"] = ddim_sample(ri.exact_v_denoiser, pc_noise, 8, mask=pc_mask).numpy()

    # --- progressive-distillation targets (exact teacher), student N = 4 ------------------------------
    x = ri.gaussian_noise((12, 5, 2), 4) * ri.S + ri.MU
    eps = ri.gaussian_noise((12, 5, 2), 5)
    mask = ri.random_mask(12, 5, 6)
    index = tf.constant(np.arange(12) % 4, tf.int32)
    t, t_mid, s = student_step_times(index, 4)
    z_t, _ = diffuse(x, t, eps, mask=mask)
    v_tilde, x_tilde = distillation_targets(ri.exact_v_denoiser, z_t, t, t_mid, s, mask)
    out["distill/v_tilde"], out["distill/x_tilde"] = v_tilde.numpy(), x_tilde.numpy()

    # --- tiny FPCD: two-stage point-cloud sampling, training and distillation losses -----------------
    model, _ = ri.tiny_fpcd_model()
    onehot = np.eye(5, dtype=np.float32)[np.arange(6) % 5]
    for buckets in (1, 2):
        jets, particles, pmask = sample_point_clouds(
            model.jet_denoiser,
            model.particle_denoiser,
            ri.multiplicity_mask,
            onehot,
            num_particles=10,
            num_particle_features=3,
            num_jet_features=4,
            num_steps=4,
            seed=11,
            num_buckets=buckets,
        )
        out[f"fpcd/sample{buckets}/jets"], out[f"fpcd/sample{buckets}/particles"] = jets, particles
        out[f"fpcd/sample{buckets}/mask"] = pmask
    teacher, _ = ri.tiny_fpcd_model()
    student_nets, _ = ri.tiny_fpcd_model()
    student = DistillationModel(student_nets.jet_net, student_nets.particle_net, teacher, 2, 0.99, seed=3)
    ri.train_and_record(model, ri.fpcd_batch(), "fpcd/train", out)
    ri.train_and_record(student, ri.fpcd_batch(), "fpcd/distill", out)

    # --- VE samplers: exact Gaussian score and a tiny U-Net --------------------------------------------
    sigmas = ve_sigmas(4, ri.SIGMA_MIN, ri.SIGMA_MAX).numpy()
    x_T = ri.gaussian_noise((6, 3), 7) * ri.SIGMA_MAX
    out["ve/exact/pc"] = sample_pc(
        ri.exact_ve_score, x_T, sigmas, snr=0.16, corrector_steps=1, seed=8
    ).numpy()
    for solver in ("euler", "heun"):
        out[f"ve/exact/ode_{solver}"] = sample_probability_flow(
            ri.exact_ve_score, x_T, sigmas, solver=solver
        ).numpy()
    batch = ri.image_batch()
    labels = batch["labels"]
    x_img = ri.gaussian_noise((4, 25, 25, 1), 9) * ri.SIGMA_MAX
    for kind in ("noise", "denoiser"):
        score_model = ri.tiny_image_model("score", kind)
        extra = {"label": labels}
        out[f"ve/unet_{kind}/pc"] = sample_pc(
            score_model.score, x_img, sigmas, snr=0.16, corrector_steps=1, seed=8, extra_args=extra
        ).numpy()
        for solver in ("euler", "heun"):
            out[f"ve/unet_{kind}/ode_{solver}"] = sample_probability_flow(
                score_model.score, x_img, sigmas, solver=solver, extra_args=extra
            ).numpy()
        ri.train_and_record(score_model, batch, f"score_{kind}/train", out)

    # --- consistency: 1- and 3-step sampling, CT and CD losses ----------------------------------------
    cm = ri.tiny_image_model("consistency", total_steps=100)
    for steps in (1, 3):
        levels = consistency_sampling_sigmas(steps, ri.SIGMA_MIN, ri.SIGMA_MAX, 7.0)
        out[f"consistency/sample{steps}"] = sample_consistency(
            cm.consistency_fn, x_img, levels, ri.SIGMA_MIN, seed=12, extra_args={"label": labels}
        ).numpy()
    ri.train_and_record(cm, batch, "consistency_ct/train", out)
    teacher_score = ri.tiny_image_model("score", "denoiser")
    cd = ri.tiny_image_model(
        "consistency", mode="distill", teacher_score=teacher_score.score, total_steps=100
    )
    ri.train_and_record(cd, batch, "consistency_cd/train", out)

    np.savez_compressed(path, **out)
    print(f"wrote {len(out)} arrays to {path}")


if __name__ == "__main__" and "--layouts" not in sys.argv:
    main(Path(__file__).resolve().parent / "redesign_reference.npz")


def weight_layout(model, path: Path) -> list[list]:
    """Every dataset path and shape in ``model``'s ``.weights.h5`` file (the layout old runs have)."""
    import h5py

    model.save_weights(path)
    layout = []
    with h5py.File(path, "r") as handle:
        handle.visititems(
            lambda name, obj: (
                layout.append([name, list(obj.shape)]) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return sorted(layout)


def record_layouts(path: Path) -> None:
    """Write the weight-file layouts of the tiny models (FPCD, score, consistency) as JSON."""
    import json
    import tempfile

    models = {
        "fpcd": ri.tiny_fpcd_model()[0],
        "score": ri.tiny_image_model("score", "denoiser"),
        "consistency": ri.tiny_image_model("consistency", total_steps=100),
    }
    with tempfile.TemporaryDirectory() as tmp:
        layouts = {name: weight_layout(m, Path(tmp) / f"{name}.weights.h5") for name, m in models.items()}
    path.write_text(json.dumps(layouts, indent=0))


if __name__ == "__main__" and "--layouts" in sys.argv:
    record_layouts(Path(__file__).resolve().parent / "redesign_weight_layout.json")
