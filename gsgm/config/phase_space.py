"""Config of the ``phase_space`` family: generative models on massless phase space (RAMBO q-space).

Sections: ``data`` (process, sample size, cut, q-space embedding), ``model`` (method and MLP sizes),
``diffusion`` (the q-space Langevin schedule), ``training``, ``sampling``. ``model.method`` chooses

* ``qspace_diffusion``: Langevin diffusion to RAMBO's q-distribution (uniform phase space), eq. 10-11;
* ``qspace_flow``: flow matching in q-space from a fitted Gaussian prior (eqs. 12-13);
* ``pspace_diffusion``: Gaussian (VP cosine) diffusion directly on the 3-momenta (baseline);
* ``pspace_flow``: flow matching on the 3-momenta from a fitted Gaussian prior (baseline).

q-space models map every sample to phase space with RAMBO (exact conservation); p-space models take
E_i = |p_i| and conserve nothing by construction.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from gsgm.config.base import NonNegativeInt, PositiveFloat, PositiveInt, Section, invalid
from gsgm.config.registry import register_config_family
from gsgm.config.training import (
    BatchSize,
    EarlyStoppingPatience,
    EmaDecay,
    Epochs,
    GradClipNorm,
    LearningRate,
    Optimizer,
    Seed,
    ValidFraction,
)

__all__ = [
    "FAMILY",
    "METHODS",
    "PhaseSpaceConfig",
    "PhaseSpaceData",
    "PhaseSpaceDiffusion",
    "PhaseSpaceModel",
    "PhaseSpaceSampling",
    "PhaseSpaceTraining",
]

FAMILY = "phase_space"
Method = Literal["qspace_diffusion", "qspace_flow", "pspace_diffusion", "pspace_flow"]
METHODS: tuple[str, ...] = ("qspace_diffusion", "qspace_flow", "pspace_diffusion", "pspace_flow")


class PhaseSpaceData(Section):
    """process: muon_decay | qqg (N = 3) | antenna (N = 10, eq. 21); ``num_events`` generated from
    ``seed`` (``--data generated``); ``y_min``: the qqg cut s_ij > y_min; ``xi_max``: the antenna's
    cut max s_ij <= xi_max min s_ij; ``embedding``: single | copies | continuous | identity
    (section II.4) with ``copies`` transformations for "copies", drawn from ``embedding_seed``."""

    # run directories written before the antenna existed have no xi_max (their process never reads it)
    OPTIONAL_KEYS: ClassVar[tuple[str, ...]] = ("xi_max",)

    process: Literal["muon_decay", "qqg", "antenna"] = "muon_decay"
    num_events: PositiveInt = 20_000
    y_min: PositiveFloat = 0.01
    xi_max: PositiveFloat = 1000.0
    seed: Seed = 0
    embedding: Literal["single", "copies", "continuous", "identity"] = "single"
    copies: PositiveInt = 1
    embedding_seed: Seed = 0

    def check(self) -> None:
        if self.y_min >= 1.0 / 3.0:
            raise invalid("y_min", f"must be < 1/3, got {self.y_min}")
        if self.xi_max <= 1.0:
            raise invalid("xi_max", f"must exceed 1, got {self.xi_max}")
        if self.embedding != "copies" and self.copies != 1:
            raise invalid("copies", f"applies to embedding 'copies' only; set 1 for {self.embedding!r}")


class PhaseSpaceModel(Section):
    """method (see the module docstring); ``network``: mlp (appendix A.1, N = 3) or transformer
    (permutation equivariant, appendix A.2's choice for N = 10); ``width``, ``depth``: the MLP's hidden
    width and layers (appendix A: 256, 4) or the transformer's latent dimension and blocks (PET small:
    128, 8), ``num_heads`` its attention heads (must divide ``width``); ``time_dim`` (64);
    ``time_weighting`` of the q-space diffusion loss: uniform, or step_size (weight gamma_t / mean gamma,
    towards late times); ``loss`` of q-space diffusion: noise (appendix A.2, eq. 28) or implicit
    (implicit score matching, eq. 5)."""

    # run directories written before the transformer existed are MLP runs: these keys default to that
    OPTIONAL_KEYS: ClassVar[tuple[str, ...]] = ("network", "num_heads")

    method: Method = "qspace_diffusion"
    network: Literal["mlp", "transformer"] = "mlp"
    width: PositiveInt = 256
    depth: PositiveInt = 4
    num_heads: PositiveInt = 8
    time_dim: PositiveInt = 64
    time_weighting: Literal["uniform", "step_size"] = "step_size"
    loss: Literal["noise", "implicit"] = "noise"

    def check(self) -> None:
        if self.loss == "implicit" and self.method != "qspace_diffusion":
            raise invalid("loss", f"'implicit' applies to method qspace_diffusion, not {self.method!r}")
        if self.time_dim % 2:
            raise invalid("time_dim", f"must be even, got {self.time_dim}")
        if self.network == "transformer" and self.width % self.num_heads:
            raise invalid("num_heads", f"must divide width ({self.width}), got {self.num_heads}")


class PhaseSpaceDiffusion(Section):
    """The q-space Langevin schedule: ``num_steps`` steps, the first ``gaussian_steps`` Gaussian with
    step ``gaussian_step_size``, the rest linear from ``step_min`` to ``step_max`` (appendix A)."""

    num_steps: PositiveInt = 500
    step_min: PositiveFloat = 0.002
    step_max: PositiveFloat = 0.01
    gaussian_steps: NonNegativeInt = 0
    gaussian_step_size: PositiveFloat = 0.01

    def check(self) -> None:
        if self.gaussian_steps >= self.num_steps:
            raise invalid(
                "gaussian_steps", f"must be < num_steps ({self.num_steps}), got {self.gaussian_steps}"
            )


class PhaseSpaceTraining(Section):
    batch_size: BatchSize = 1024
    learning_rate: LearningRate = 1e-3
    optimizer: Optimizer = "adamw"
    epochs: Epochs = 100
    early_stopping_patience: EarlyStoppingPatience = 100
    valid_fraction: ValidFraction = 0.1
    ema_decay: EmaDecay = 0.999
    grad_clip_norm: GradClipNorm = 1.0
    seed: Seed = 1


class PhaseSpaceSampling(Section):
    """``num_steps``: ODE steps (flows) or DDIM steps (p-space diffusion); q-space diffusion always
    takes the Langevin schedule's steps. ``ode_method``: euler | heun (flows)."""

    num_steps: PositiveInt = 100
    ode_method: Literal["euler", "heun"] = "heun"


class PhaseSpaceConfig(Section):
    name: str
    description: str
    data: PhaseSpaceData
    model: PhaseSpaceModel
    diffusion: PhaseSpaceDiffusion
    training: PhaseSpaceTraining
    sampling: PhaseSpaceSampling


register_config_family(FAMILY, PhaseSpaceConfig)
