"""The paper's metrics (FPCD section IV, Tables I-IV) as functions of explicit numpy arrays.

Every particle-level metric is the field's implementation in ``jetnet.evaluation`` (0.2.5); this module
only feeds it JetNet-layout arrays, seeds its resampling and packs the result. The EFPs that W1EFP, FPD
and KPD need are the exception: jetnet computes them one jet at a time through energyflow (three
quarters of an evaluation's time); :mod:`gsgm.evaluation.efp` computes the same numbers for all jets at
once, and :class:`~gsgm.evaluation.efp_cache.FeatureCache` computes them once per sample (and once per
truth sample on disk).

- ``w1m``: W1 of the relative jet mass computed from the constituents (``jetnet.evaluation.w1m``);
- ``w1p``: W1 of the particle eta_rel, phi_rel, pt_rel, averaged (``w1p``);
- ``w1efp``: W1 of the 5 EFPs with n = 4, d = 4, prime, averaged (``w1efp``'s resampling, on the
  batched EFPs);
- ``fpnd``: Frechet ParticleNet distance, g, q, t with 30 particles only (``fpnd``);
- ``cov`` / ``mmd``: coverage (higher is better) and minimum matching distance, EMD matching of 100 vs
  100 jets per batch (``cov_mmd``);
- ``fpd`` / ``kpd``: Frechet and kernel physics distances on the 36 EFPs with d <= 4 (``fpd``, ``kpd``,
  ``get_fpd_kpd_jet_features``'s 36 graphs, batched);
- ``w1_jet_pt`` [GeV], ``w1_jet_eta``, ``w1_jet_mass`` [GeV], ``w1_jet_n``: W1 of the jet features
  (``scipy.stats.wasserstein_distance``).

jetnet has no generic one-dimensional W1 with resampling, so the jet-level W1s (Table II and IV) use
the same scipy function jetnet uses internally, resampled exactly as ``jetnet.evaluation.w1m`` does.

Conventions:

* Particles are JetNet layout [N, P, 4] = (eta_rel, phi_rel, pt_rel, mask). Only the first three
  features are passed to jetnet: its W1M reads a fourth feature as the particle *mass* (the mask would
  give every particle a mass of 1 in units of the jet pT) and its W1P would compare it as a feature.
* Uncertainties: the W1 metrics are the mean and standard deviation over ``num_batches`` resamples of
  ``num_eval_samples`` jets drawn with replacement from each sample ("bootstrapping with replacement"
  of the paper, jetnet's own procedure). For W1P and W1EFP, which average several features, the
  uncertainty is the per-feature standard deviations added in quadrature, as earlier jetnet releases
  did with ``average_over_features`` / ``average_over_efps`` (0.2.5 returns per-feature values only).
  COV and MMD: mean and standard deviation over their batches. FPD: the error of the 1/N
  extrapolation; KPD: half the 16-84 % inter-quantile range over its batches (both as returned by
  jetnet). FPND: one number (no uncertainty in jetnet).
* Resampling is seeded (``seed``), so a report is reproducible.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gsgm.data.jetnet_format import JetSample
from gsgm.evaluation.efp import w1efp_columns
from gsgm.evaluation.efp_cache import FeatureCache
from gsgm.evaluation.jetnet_compat import (
    emd_numpy2_compat,
    fpnd_defined,
    fpnd_status,
    quiet_jetnet_warnings,
    seeded_jetnet,
    single_threaded_blas,
)


@dataclass(frozen=True)
class MetricSpec:
    """How a metric is named, scaled and read.

    Attributes:
        key: name in ``metrics.json``.
        label: column header (Markdown).
        table: ``"particle"`` (paper Tables I/III), ``"jet"`` (Tables II/IV) or ``"detail"`` (JSON only).
        scale: values are shown divided by this in Markdown (the paper's "(x 10^-3)").
        unit: physical unit of the value ("" for dimensionless).
        higher_is_better: True only for coverage.
    """

    key: str
    label: str
    table: str
    scale: float = 1.0
    unit: str = ""
    higher_is_better: bool = False


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("w1m", "W1M", "particle", 1e-3),
    MetricSpec("w1p", "W1P", "particle", 1e-3),
    MetricSpec("w1efp", "W1EFP", "particle", 1e-5),
    MetricSpec("fpnd", "FPND", "particle"),
    MetricSpec("cov", "COV", "particle", higher_is_better=True),
    MetricSpec("mmd", "MMD", "particle"),
    MetricSpec("fpd", "FPD", "particle", 1e-3),
    MetricSpec("kpd", "KPD", "particle", 1e-3),
    MetricSpec("w1_jet_pt", "W1 jet pT", "jet", unit="GeV"),
    MetricSpec("w1_jet_eta", "W1 jet eta", "jet"),
    MetricSpec("w1_jet_mass", "W1 jet mass", "jet", unit="GeV"),
    MetricSpec("w1_jet_n", "W1 jet N", "jet"),
)
METRIC_KEYS: tuple[str, ...] = tuple(spec.key for spec in METRICS)
METRICS_BY_KEY: dict[str, MetricSpec] = {spec.key: spec for spec in METRICS}
# Column of each jet-level metric in JetNet's jet_features (pt, eta, mass, num_particles).
JET_FEATURE_COLUMNS: dict[str, int] = {"w1_jet_pt": 0, "w1_jet_eta": 1, "w1_jet_mass": 2, "w1_jet_n": 3}


@dataclass(frozen=True)
class MetricValue:
    """One metric for one comparison.

    Attributes:
        mean: the value (None when the metric is not available).
        std: its uncertainty (None when the method has none, e.g. FPND).
        reason: why ``mean`` is None; never set for an available metric.
        components: per-feature values where the metric averages several (W1P: eta, phi, pt).
    """

    mean: float | None
    std: float | None
    reason: str | None = None
    components: dict[str, float] | None = None

    @property
    def available(self) -> bool:
        return self.mean is not None

    @classmethod
    def unavailable(cls, reason: str) -> MetricValue:
        return cls(None, None, reason)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mean": self.mean, "std": self.std}
        if not self.available:
            out["available"] = False
            out["reason"] = self.reason
        if self.components:
            out["components"] = dict(self.components)
        return out


@dataclass(frozen=True)
class EvaluationConfig:
    """Sample sizes and resampling of an evaluation.

    Attributes:
        jets_per_class: jets in each compared sample (the paper: 50,000 generated vs 50,000 truth).
        bootstrap: resamples for the W1 metrics (jetnet's ``num_batches``; its default is 5).
        cov_mmd_batches: batches for COV/MMD (jetnet's default 10).
        cov_mmd_jets: jets per COV/MMD batch from each sample (jetnet's default 100).
        fpnd_batch_size: ParticleNet batch size for FPND.
        seed: seed of every resampling.
        metrics: keys to compute (default: all of METRIC_KEYS).
    """

    jets_per_class: int = 50_000
    bootstrap: int = 5
    cov_mmd_batches: int = 10
    cov_mmd_jets: int = 100
    fpnd_batch_size: int = 512
    seed: int = 0
    metrics: tuple[str, ...] = METRIC_KEYS

    def __post_init__(self) -> None:
        for name in ("jets_per_class", "bootstrap", "cov_mmd_batches", "cov_mmd_jets", "fpnd_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        unknown = [key for key in self.metrics if key not in METRICS_BY_KEY]
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRIC_KEYS)}")


# --------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------


def _particles3(particles: np.ndarray, name: str) -> np.ndarray:
    """(eta_rel, phi_rel, pt_rel) [N, P, 3] of JetNet-layout [N, P, 4] particles (see module docstring)."""
    particles = np.asarray(particles)
    if particles.ndim != 3 or particles.shape[-1] != 4:
        raise ValueError(
            f"{name}: particles must be [N, P, 4] (eta_rel, phi_rel, pt_rel, mask), got {particles.shape}"
        )
    if len(particles) == 0:
        raise ValueError(f"{name}: no jets")
    return particles[..., :3]


def _check_pair(truth: np.ndarray, gen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    truth3, gen3 = _particles3(truth, "truth"), _particles3(gen, "generated")
    if truth3.shape[1] != gen3.shape[1]:
        raise ValueError(
            f"particle counts differ: truth has {truth3.shape[1]} slots per jet, generated {gen3.shape[1]}"
        )
    return truth3, gen3


# --------------------------------------------------------------------------------------------------
# Particle-level metrics (jetnet)
# --------------------------------------------------------------------------------------------------


def w1m(
    truth: np.ndarray, gen: np.ndarray, num_eval_samples: int, num_batches: int = 5, seed: int = 0
) -> MetricValue:
    """W1 between the relative jet masses m/pT_jet of two samples (paper's W1^PM).

    Args:
        truth, gen: particles [N, P, 4] (eta_rel, phi_rel, pt_rel, mask), JetNet layout.
        num_eval_samples: jets drawn with replacement from each sample per resample.
        num_batches: resamples.

    Returns:
        Mean and standard deviation over the resamples (dimensionless: mass in units of the jet pT).
    """
    from jetnet.evaluation import w1m as jetnet_w1m

    truth3, gen3 = _check_pair(truth, gen)
    with seeded_jetnet(seed), quiet_jetnet_warnings():
        mean, std = jetnet_w1m(truth3, gen3, num_eval_samples=num_eval_samples, num_batches=num_batches)
    return MetricValue(float(mean), float(std))


def w1p(
    truth: np.ndarray, gen: np.ndarray, num_eval_samples: int, num_batches: int = 5, seed: int = 0
) -> MetricValue:
    """W1 between the particle (eta_rel, phi_rel, pt_rel) distributions, averaged over the 3 features.

    Only real particles (mask = 1) enter. ``components`` holds the three per-feature means.

    Args:
        truth, gen: particles [N, P, 4] (eta_rel, phi_rel, pt_rel, mask).

    Returns:
        Mean over features of the per-feature means; uncertainty = per-feature stds in quadrature.
    """
    from jetnet.evaluation import w1p as jetnet_w1p

    truth3, gen3 = _check_pair(truth, gen)
    with seeded_jetnet(seed), quiet_jetnet_warnings():
        means, stds = jetnet_w1p(
            truth3,
            gen3,
            mask1=np.asarray(truth)[..., 3],
            mask2=np.asarray(gen)[..., 3],
            num_eval_samples=num_eval_samples,
            num_batches=num_batches,
        )
    components = dict(zip(("eta_rel", "phi_rel", "pt_rel"), (float(m) for m in means), strict=True))
    return MetricValue(float(np.mean(means)), float(np.linalg.norm(stds)), components=components)


def w1efp(
    truth: np.ndarray,
    gen: np.ndarray,
    num_eval_samples: int,
    num_batches: int = 5,
    seed: int = 0,
) -> MetricValue:
    """W1 between the energy-flow polynomials (n = 4, d = 4, prime: 5 EFPs), averaged over the EFPs.

    Args:
        truth, gen: particles [N, P, 4] (eta_rel, phi_rel, pt_rel, mask); particles are massless.

    Returns:
        Mean over EFPs of the per-EFP means; uncertainty = per-EFP stds in quadrature.
    """
    from gsgm.evaluation.efp import W1EFP_EFPSET_ARGS, batched_efps

    truth3, gen3 = _check_pair(truth, gen)
    return w1efp_from_features(
        batched_efps(truth3, W1EFP_EFPSET_ARGS),
        batched_efps(gen3, W1EFP_EFPSET_ARGS),
        num_eval_samples,
        num_batches,
        seed,
    )


def w1efp_from_features(
    truth_efps: np.ndarray, gen_efps: np.ndarray, num_eval_samples: int, num_batches: int = 5, seed: int = 0
) -> MetricValue:
    """W1EFP from precomputed EFPs [N, 5] (:func:`gsgm.evaluation.efp.batched_efps`, W1EFP's graphs).

    The resampling is ``jetnet.evaluation.w1efp``'s, draw for draw: per batch ``num_eval_samples`` jets
    with replacement from each sample (truth first) from ``default_rng(seed)``, then one W1 per EFP.
    """
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(seed)
    w1s = []
    for _ in range(num_batches):
        truth_draw = truth_efps[rng.choice(len(truth_efps), size=num_eval_samples)]
        gen_draw = gen_efps[rng.choice(len(gen_efps), size=num_eval_samples)]
        w1s.append(
            [wasserstein_distance(truth_draw[:, i], gen_draw[:, i]) for i in range(truth_efps.shape[1])]
        )
    means, stds = np.mean(w1s, axis=0), np.std(w1s, axis=0)
    return MetricValue(float(np.mean(means)), float(np.linalg.norm(stds)))


def cov_mmd(
    truth: np.ndarray, gen: np.ndarray, num_eval_samples: int = 100, num_batches: int = 10, seed: int = 0
) -> tuple[MetricValue, MetricValue]:
    """Coverage and minimum matching distance with the EMD (jetnet's ``cov_mmd``).

    Each batch draws ``num_eval_samples`` jets from each sample; the values are the mean and standard
    deviation over ``num_batches`` batches (jetnet reports only the mean; calling it one batch at a time
    with the same seeded generator gives the same batches plus their spread).

    Args:
        truth, gen: particles [N, P, 4] (eta_rel, phi_rel, pt_rel, mask); pt_rel must be >= 0.

    Returns:
        (COV, MMD). MMD is an EMD with R = 1, in units of the jet pT.
    """
    from jetnet.evaluation import cov_mmd as jetnet_cov_mmd

    truth3, gen3 = _check_pair(truth, gen)
    for name, arr in (("truth", truth3), ("generated", gen3)):
        negative = int((arr[..., 2] < 0).sum())
        if negative:
            raise ValueError(f"{name}: {negative} particles have pt_rel < 0; the EMD needs pt_rel >= 0")
    covs, mmds = [], []
    with seeded_jetnet(seed), emd_numpy2_compat(), quiet_jetnet_warnings():
        for _ in range(num_batches):
            cov, mmd = jetnet_cov_mmd(
                truth3, gen3, num_eval_samples=num_eval_samples, num_batches=1, use_tqdm=False
            )
            covs.append(cov)
            mmds.append(mmd)
    return (
        MetricValue(float(np.mean(covs)), float(np.std(covs))),
        MetricValue(float(np.mean(mmds)), float(np.std(mmds))),
    )


def fpd_kpd_features(particles: np.ndarray) -> np.ndarray:
    """The 36 EFPs (d <= 4) jetnet recommends for FPD and KPD: [N, 36] float64 from particles [N, P, 4].

    Equal to ``jetnet.evaluation.get_fpd_kpd_jet_features`` (energyflow, one jet at a time) within
    float round-off; computed for all jets at once by :func:`gsgm.evaluation.efp.batched_efps`.
    """
    from gsgm.evaluation.efp import FPD_KPD_EFPSET_ARGS, batched_efps

    return batched_efps(_particles3(particles, "particles"), FPD_KPD_EFPSET_ARGS)


def fpd(truth_features: np.ndarray, gen_features: np.ndarray, seed: int = 0) -> MetricValue:
    """Frechet physics distance between two [N, F] feature sets (jetnet's ``fpd``).

    jetnet measures it for batch sizes from 20,000 to 50,000 and extrapolates to infinite N; for
    smaller samples the range is scaled down to (0.4 N, N) so that no batch exceeds the sample.
    """
    from jetnet.evaluation import fpd as jetnet_fpd

    n = min(len(truth_features), len(gen_features))
    max_samples = min(50_000, n)
    min_samples = max(2, min(20_000, int(0.4 * max_samples)))
    with quiet_jetnet_warnings(), single_threaded_blas():
        value, error = jetnet_fpd(
            truth_features, gen_features, min_samples=min_samples, max_samples=max_samples, seed=seed
        )
    return MetricValue(float(value), float(error))


def kpd(truth_features: np.ndarray, gen_features: np.ndarray, seed: int = 0) -> MetricValue:
    """Kernel physics distance between two [N, F] feature sets (jetnet's ``kpd``: median and error).

    The batch size is jetnet's 5,000, or the sample size when that is smaller.
    """
    from jetnet.evaluation import kpd as jetnet_kpd

    n = min(len(truth_features), len(gen_features))
    with single_threaded_blas():
        value, error = jetnet_kpd(truth_features, gen_features, batch_size=min(5_000, n), seed=seed)
    return MetricValue(float(value), float(error))


def fpnd(gen: np.ndarray, jet_class: str, batch_size: int = 512) -> MetricValue:
    """Frechet ParticleNet distance of ``gen`` to jetnet's stored JetNet statistics of ``jet_class``.

    Unlike the other metrics it does not use the truth sample: the reference is the real JetNet data
    set's ParticleNet activations shipped with jetnet. It is "not available" (with the reason, never
    0) outside g, q, t with 30 particles, or when torch_geometric is missing. jetnet's network and
    statistics are evaluated densely by :mod:`gsgm.evaluation.particlenet` (the same value as
    ``jetnet.evaluation.fpnd`` within its float32 round-off, several times faster).

    Args:
        gen: particles [N, 30, 4] (eta_rel, phi_rel, pt_rel, mask); at most 50,000 are used.
        jet_class: "g", "q" or "t".
        batch_size: jets per network pass (memory about 0.25 MB per jet).
    """
    gen3 = _particles3(gen, "generated")
    defined, reason = fpnd_defined(jet_class, gen3.shape[1])
    if not defined:
        return MetricValue.unavailable(f"not defined: {reason}")
    available, reason = fpnd_status()
    if not available:
        return MetricValue.unavailable(f"not available: {reason}")
    try:
        from gsgm.evaluation.particlenet import fpnd as dense_fpnd

        with quiet_jetnet_warnings():
            value = dense_fpnd(gen3, jet_class, batch_size=batch_size)
    except ImportError as err:  # e.g. torch_geometric built against another torch
        return MetricValue.unavailable(f"not available: {err}")
    return MetricValue(float(value), None)


# --------------------------------------------------------------------------------------------------
# Jet-level metrics (paper Tables II and IV)
# --------------------------------------------------------------------------------------------------


def w1_resampled(
    truth: np.ndarray, gen: np.ndarray, num_eval_samples: int, num_batches: int = 5, seed: int = 0
) -> MetricValue:
    """W1 between two 1-d samples, resampled like ``jetnet.evaluation.w1m``.

    Args:
        truth, gen: [N] values (any unit; the result has the same unit).
        num_eval_samples: values drawn with replacement from each sample per resample.
        num_batches: resamples.

    Returns:
        Mean and standard deviation of the W1 over the resamples.
    """
    from scipy.stats import wasserstein_distance

    truth, gen = np.asarray(truth, dtype=np.float64).ravel(), np.asarray(gen, dtype=np.float64).ravel()
    if truth.size == 0 or gen.size == 0:
        raise ValueError("w1_resampled needs non-empty samples")
    rng = np.random.default_rng(seed)
    values = [
        wasserstein_distance(
            truth[rng.choice(truth.size, num_eval_samples)], gen[rng.choice(gen.size, num_eval_samples)]
        )
        for _ in range(num_batches)
    ]
    return MetricValue(float(np.mean(values)), float(np.std(values)))


def jet_w1(
    truth_jets: np.ndarray,
    gen_jets: np.ndarray,
    key: str,
    num_eval_samples: int,
    num_batches: int = 5,
    seed: int = 0,
) -> MetricValue:
    """W1 of one jet feature; ``key`` is one of ``w1_jet_pt`` [GeV], ``_eta``, ``_mass`` [GeV], ``_n``.

    Args:
        truth_jets, gen_jets: JetNet jet features [N, 4] (pt [GeV], eta, mass [GeV], num_particles).
    """
    column = JET_FEATURE_COLUMNS[key]
    for name, arr in (("truth", truth_jets), ("generated", gen_jets)):
        if np.ndim(arr) != 2 or np.shape(arr)[-1] != 4:
            raise ValueError(f"{name}: jet features must be [N, 4], got {np.shape(arr)}")
    return w1_resampled(truth_jets[:, column], gen_jets[:, column], num_eval_samples, num_batches, seed)


# --------------------------------------------------------------------------------------------------
# All metrics of one comparison
# --------------------------------------------------------------------------------------------------


def metric_stages(metrics: Sequence[str]) -> list[str]:
    """The stages :func:`evaluate_pair` runs for these metric keys, in order (one progress step each).

    A stage computes one metric, except ``"cov_mmd"`` (COV and MMD together) and ``"efp_features"``
    (the 36 EFPs that W1EFP, FPD and KPD share).
    """
    wanted = set(metrics)
    stages = [key for key in ("w1m", "w1p") if key in wanted]
    if wanted & {"w1efp", "fpd", "kpd"}:
        stages.append("efp_features")
    stages += [key for key in ("w1efp", "fpnd") if key in wanted]
    if wanted & {"cov", "mmd"}:
        stages.append("cov_mmd")
    stages += [key for key in ("fpd", "kpd") if key in wanted]
    return stages + [key for key in JET_FEATURE_COLUMNS if key in wanted]


def evaluate_pair(
    truth: JetSample,
    gen: JetSample,
    jet_class: str,
    config: EvaluationConfig,
    cache: FeatureCache | None = None,
    timings: MutableMapping[str, float] | None = None,
    on_stage: Callable[[str], None] | None = None,
    gen_is_truth: bool = False,
) -> dict[str, MetricValue]:
    """Every metric of ``config.metrics`` between two samples of one class.

    Args:
        truth: the reference jets (particles [N, P, 4], jet features [N, 4]).
        gen: the compared jets (generated, or a disjoint truth sample for the floor), same P.
        jet_class: the class (decides whether FPND is defined).
        config: sample size, resampling, seed.
        cache: reuse EFP features across calls (keyed by the particle array's identity); the truth
            sample's are also kept on disk when the cache has a directory.
        timings: seconds spent per metric are added here.
        on_stage: called with the stage's name (:func:`metric_stages`) after each stage (progress bars).
        gen_is_truth: ``gen`` is the floor's second truth half (its EFPs are kept on disk too).

    Returns:
        {metric key: MetricValue}, in the order of METRICS.
    """
    n = min(len(truth), len(gen))
    cache = cache if cache is not None else FeatureCache()
    timings = timings if timings is not None else {}
    wanted = set(config.metrics)
    results: dict[str, MetricValue] = {}
    common = {"num_eval_samples": n, "num_batches": config.bootstrap, "seed": config.seed}

    def timed(keys: tuple[str, ...], compute) -> None:
        if not wanted.intersection(keys):
            return
        start = time.perf_counter()
        values = compute()
        values = values if isinstance(values, tuple) else (values,)
        for key, value in zip(keys, values, strict=True):
            results[key] = value
        share = (time.perf_counter() - start) / len(keys)
        for key in keys:
            timings[key] = timings.get(key, 0.0) + share
        if on_stage:
            on_stage("cov_mmd" if keys == ("cov", "mmd") else keys[0])

    timed(("w1m",), lambda: w1m(truth.particles, gen.particles, **common))
    timed(("w1p",), lambda: w1p(truth.particles, gen.particles, **common))
    if wanted.intersection(("w1efp", "fpd", "kpd")):
        start = time.perf_counter()
        truth_features = cache.get(truth.particles, persistent=True)
        # the floor's "generated" sample is the second truth half: keep it on disk too
        gen_features = cache.get(gen.particles, persistent=gen_is_truth)
        timings["efp_features"] = timings.get("efp_features", 0.0) + time.perf_counter() - start
        if on_stage:
            on_stage("efp_features")
        columns = w1efp_columns()
        timed(
            ("w1efp",),
            lambda: w1efp_from_features(truth_features[:, columns], gen_features[:, columns], **common),
        )
    timed(("fpnd",), lambda: fpnd(gen.particles, jet_class, config.fpnd_batch_size))
    timed(
        ("cov", "mmd"),
        lambda: cov_mmd(
            truth.particles, gen.particles, config.cov_mmd_jets, config.cov_mmd_batches, config.seed
        ),
    )
    if wanted.intersection(("fpd", "kpd")):
        timed(("fpd",), lambda: fpd(truth_features, gen_features, config.seed))
        timed(("kpd",), lambda: kpd(truth_features, gen_features, config.seed))
    for key in JET_FEATURE_COLUMNS:
        timed((key,), lambda key=key: jet_w1(truth.jets, gen.jets, key, **common))
    return {key: results[key] for key in METRIC_KEYS if key in results}


def results_to_dict(results: Mapping[str, MetricValue]) -> dict[str, dict[str, Any]]:
    """{key: MetricValue} -> JSON-ready {key: {"mean", "std", ...}}."""
    return {key: value.to_dict() for key, value in results.items()}
