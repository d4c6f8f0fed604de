"""Reversible preprocessing of JetNet jets for the diffusion models, stored next to the model.

The chain follows FPCD (Mikuni, Nachman, Pettee; ``scripts/utils.py`` of the original code):

1. **Recentring** (optional, ``recenter=True`` by default), see :func:`recenter_particles`. A
   canonicalisation of the particle coordinates, not an invertible transformation: the per-jet shift
   is not stored. Training data are recentred, generated jets come out recentred (``inverse``
   recentres them again, as FPCD does), so evaluation must compare against recentred truth, e.g.
   ``JetSample(recenter_particles(truth.particles), truth.jets, truth.labels)``.
2. ``pt_rel -> log(1 - pt_rel)`` (``pt_feature="log1m"``, FPCD's choice), which maps the steeply
   falling pt_rel in [0, 1) onto (-inf, 0], or ``pt_rel -> log(pt_rel)`` (``"log"``). For the soft
   particles, which are most of them, log(1 - pt_rel) is about -pt_rel: after standardising, an error
   of the model is an *absolute* error of pt_rel of size error x std (the std set by the few hard
   particles), and a soft particle at a wide angle carries much of the jet mass. log(pt_rel) makes
   every error relative: the same standardised noise (0.1 per particle) on the truth moves W1M of
   W-boson jets from its floor 1.36e-3 to 7.9e-3 through log(1 - pt_rel) and to 2.0e-3 through
   log(pt_rel); light quarks 20.3e-3 against 2.3e-3 (BENCHMARKS.md, "The pt feature").
3. Per-class standardisation (mean 0, standard deviation 1 on the fit data) of the real (mask = 1)
   particles' (eta_rel, phi_rel, pt feature); padded slots are set to exactly 0 and do not enter
   the statistics.
4. The jet features (pt, eta, mass, num_particles), per class, either standardised as the particles
   (``jet_transform="standard"``, FPCD's choice) or, by default (``"quantile"``), Gaussianised: the
   integer multiplicity is dequantised (n -> n - u, u ~ U[0, 1) from a seeded generator) and every
   feature is mapped through its empirical CDF on the fit jets and then the inverse normal CDF, so each
   is a standard normal whatever its shape. The jet network cannot learn a feature with a point mass
   beside the others: standardised, the multiplicity of 30-particle jets is nearly a constant (every
   top jet fills the 30 slots) and pt has a few-GeV core at 1 TeV, and with such a direction in its
   target the network falls back to a Gaussian in every other direction, e.g. the platykurtic jet
   eta (BENCHMARKS.md, "The jet eta gap found"). The inverse is exact on the fit range (its ends map
   to the finite Hazen levels 1/(2n) and 1 - 1/(2n)); generated values beyond it are clamped to the
   fit jets' smallest and largest value, and the multiplicity is ceil(n - u) = n.
5. Optionally (``pt_sum=True``) a fifth jet feature, the summed pt_rel of the jet's stored particles,
   normalised like the other four: 1 (to ~1e-3) for a jet whose constituents fit its P slots, the
   kept fraction of the jet pT for a truncated one (0.77-0.98 for 30-particle gluon jets). The jet
   network generates it with the others, and ``inverse`` rescales each jet's particle pt_rel to sum
   to it. The particle network's pt errors are independent per particle, so without it the generated
   jets' summed pt_rel spreads several times wider than the truth's (light quarks 0.86-1.07 against
   0.89-1.00), which moves the jet mass and, much more, FPD, whose EFPs scale as (sum z)^n; with it
   the recipe's W1M, W1P and W1EFP fall for nearly every class (BENCHMARKS.md, "The summed pT_rel").
6. Optionally (``constituent_mass=True``) a last jet feature, the invariant mass of the jet's stored
   particles in units of the jet pT (massless four-vectors pt_rel (cosh eta, cos phi, sin phi, sinh eta)):
   the quantity JetNet's W1M compares, below the jet's own m/pT where the jet is truncated (W jets at 30
   particles: 0.68-0.97 of it, 10-90 %). The jet network generates it with the others, and ``inverse``
   scales each jet's (eta_rel, phi_rel) about its axis by one factor so that its particles' mass is the
   generated one (:func:`scaled_to_mass`). The particle network, trained on a per-particle loss, follows
   the mass it is conditioned on only loosely (correlation 0.69 against 0.89 in the truth for W jets),
   because the mass is set by a few hard particles' opening angle; the jet network learns the jet mass
   at its floor. So the generated cloud's shape comes from the particle network and its angular scale
   from the jet network. The factor is bounded so that no particle leaves the cone (``max_delta_r``).

Statistics are indexed by the position of the class in ``JET_CLASSES`` (arrays [5, J] and [5, 3], with J = 4
to 6 jet features). A class that was absent from the fit data has no statistics: transforming or inverting
jets of that class raises :class:`UnfittedClassError` naming the class, rather than silently using another
class's (or global) statistics, which would generate plausible-looking but wrong jets.

Everything is computed in float64 internally and returned as float32, so that
``inverse(transform(x))`` reproduces recentred JetNet float32 input to ~1e-7 (particles) and to a
relative ~1e-7 (jet pt and mass, whose float32 resolution at 1 TeV is itself ~6e-5 GeV).

The statistics are saved as JSON in the run directory (the caller passes e.g. ``RUN/preprocessing.json``);
unlike FPCD, nothing is ever read from or written to the current directory.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from gsgm.data.jetnet_format import JET_CLASSES, JET_FEATURES, JetSample
from gsgm.data.preprocessing_file import (
    CONSTITUENT_MASS_FEATURE,
    FORMAT_NAME,
    FORMAT_VERSION,
    JET_TRANSFORMS,
    NORM_PARTICLE_FEATURES,
    PT_FEATURES,
    PT_SUM_FEATURE,
    PreprocessingFileError,
    jet_feature_names,
    parse_preprocessing_file,
    particle_feature_names,
)
from gsgm.utils.atomic import write_json_atomic

log = logging.getLogger(__name__)

NUM_CLASSES = len(JET_CLASSES)
NUM_JET_FEATURES = len(JET_FEATURES)
NUM_PARTICLE_FEATURES = len(NORM_PARTICLE_FEATURES)
# Largest float32 below 1: pt_rel is clipped to [0, PT_REL_MAX] so that log(1 - pt_rel) stays finite
# and the float32 output is still strictly below 1.
PT_REL_MAX = float(np.nextafter(np.float32(1.0), np.float32(0.0)))
# Floor of pt_rel under the log(pt_rel) feature (1 MeV in a 1 TeV jet). The generator's W jets hold
# a few constituents down to pt_rel ~ 1e-16 (165 of 416,000 below 1e-8 at 30 particles): photons that
# Pythia's QED shower radiates off the W boson itself (traced in the event record: 97 % of the final
# photons below 1 MeV descend from a W+-), real in the model but invisible to any detector. 21 standard
# deviations below the mean of log(pt_rel), they would widen the class's spread for every particle
# and dominate the loss, while anything below 1e-6 changes no observable.
PT_REL_MIN = 1e-6
# A feature whose spread in one class is below this (e.g. num_particles when every jet of the class
# fills all slots) is only shifted, not scaled: dividing by ~0 would blow up float noise.
STD_FLOOR = 1e-8
# The multiplicity is an integer: a spread below one particle only says that nearly every jet of the
# class is saturated (30-particle files). Dividing by such a spread turns the rare unsaturated jet into
# a 20-sigma outlier that dominates the jet loss, so its scale is at least one particle.
MULTIPLICITY_STD_FLOOR = 1.0
# Quantiles per class and jet feature of the Gaussianising jet transform: 2,001 (every 0.05 %) is what
# was measured (BENCHMARKS.md); a class with fewer fit jets keeps them all (its exact empirical CDF).
JET_QUANTILES = 2001
# Rounds of (confine to the cone, recentre) in ``inverse``; each shrinks the residual overshoot ~10x.
CONFINE_ITERATIONS = 6
# Bisection steps of ``scaled_to_mass``: the angular scale factor is then known to 2^-40 of its range.
MASS_SCALE_ITERATIONS = 40


class UnfittedClassError(ValueError):
    """Jets of a class the preprocessor has no statistics for were passed to transform/inverse."""


# --------------------------------------------------------------------------------------------------
# Recentring
# --------------------------------------------------------------------------------------------------


def _recenter64(eta: np.ndarray, phi: np.ndarray, pt: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """Float64 core of :func:`recenter_particles`; arrays [N, P], ``mask`` bool. Returns (eta, phi)."""
    w = np.where(mask, pt, 0.0)
    # Massless constituents: (E, px, py, pz) = pt * (cosh eta, cos phi, sin phi, sinh eta); pt_rel is a
    # common scale per jet, so it can stand in for pt.
    px = np.sum(w * np.cos(phi), axis=1)
    py = np.sum(w * np.sin(phi), axis=1)
    pz = np.sum(w * np.sinh(eta), axis=1)
    energy = np.sum(w * np.cosh(eta), axis=1)
    jet_phi = np.where((px != 0) | (py != 0), np.arctan2(py, px), 0.0)
    # Rapidity of the summed four-momentum. A longitudinal boost by -y shifts every massless particle's
    # eta by exactly -y and leaves pt unchanged, and afterwards the summed pz is exactly 0, so a
    # second recentring is a no-op (FPCD uses the pseudorapidity asinh(pz/pt) here, which is not).
    ratio = np.divide(pz, energy, out=np.zeros_like(pz), where=energy > 0)
    jet_y = np.arctanh(np.clip(ratio, -1.0 + 1e-15, 1.0 - 1e-15))
    new_eta = np.where(mask, eta - jet_y[:, None], 0.0)
    new_phi = phi - jet_phi[:, None]
    # Keep phi_rel in JetNet's [-pi, pi); only touch values outside so in-range values stay bit-exact.
    wrapped = np.mod(new_phi + np.pi, 2.0 * np.pi) - np.pi
    new_phi = np.where((new_phi < -np.pi) | (new_phi >= np.pi), wrapped, new_phi)
    new_phi = np.where(mask, new_phi, 0.0)
    return new_eta, new_phi


def recenter_particles(particles: np.ndarray) -> np.ndarray:
    """Recentre each jet's constituents on the axis of their summed four-momentum (idempotent).

    FPCD's ``Recenter`` recomputes the jet axis from the stored constituents only (for JetNet30 the
    leading 30, so it differs from the full jet's axis that eta_rel/phi_rel are relative to) treating
    them as massless, (px, py, pz) = pt_rel * (cos phi, sin phi, sinh eta), and subtracts the axis'
    phi = atan2(py, px) and pseudorapidity asinh(pz / pt) from every particle's phi_rel and eta_rel.

    Here the same axis is used, except that eta is shifted by the *rapidity* y = atanh(pz / E) of the
    summed four-momentum (E = sum pt_rel cosh eta) instead of its pseudorapidity. Shifting all eta
    by -y is a longitudinal boost and shifting phi a rotation; afterwards the summed momentum has
    py = pz = 0 exactly, so applying the function twice gives the same result (up to float32 rounding),
    which FPCD's version does not guarantee (its residual shift is ~ eta_axis * m^2 / (2 pt^2)).
    The difference to FPCD's shift is of that same, second order.

    Args:
        particles: [N, P, 4] (eta_rel, phi_rel, pt_rel, mask) in JetNet layout; pt_rel is dimensionless.

    Returns:
        A new [N, P, 4] array of the input's float dtype with eta_rel and phi_rel shifted per jet
        (phi_rel wrapped into [-pi, pi)), pt_rel and mask unchanged, and padded (mask = 0) slots set
        to exactly 0. Jets without particles are returned as zeros.
    """
    particles = np.asarray(particles)
    if particles.ndim != 3 or particles.shape[-1] != 4:
        raise ValueError(f"recenter_particles expects [N, P, 4] particles, got shape {list(particles.shape)}")
    out_dtype = particles.dtype if np.issubdtype(particles.dtype, np.floating) else np.float32
    p64 = particles.astype(np.float64)
    mask = p64[..., 3] > 0
    eta, phi = _recenter64(p64[..., 0], p64[..., 1], p64[..., 2], mask)
    out = np.stack([eta, phi, np.where(mask, p64[..., 2], 0.0), mask.astype(np.float64)], axis=-1)
    return out.astype(out_dtype)


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _order_real_by_pt(pt: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[N, P] permutation putting real particles first, by decreasing pt_rel (stable), padding last."""
    # Real pt_rel is in [0, 1), padding gets key -1, so sorting -key ascending does both at once;
    # the stable sort keeps the given order among ties, which makes it a no-op on JetNet-ordered jets.
    key = np.where(mask, pt, -1.0)
    return np.argsort(-key, axis=1, kind="stable")


def _take(arr: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Reorder [N, P] (or [N, P, F]) ``arr`` along axis 1 with the [N, P] permutation ``order``."""
    if arr.ndim == 3:
        return np.take_along_axis(arr, order[..., None], axis=1)
    return np.take_along_axis(arr, order, axis=1)


def _as_labels(labels: Any, n: int) -> np.ndarray:
    """Validate class indices: [N] integers in [0, len(JET_CLASSES))."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"labels must have shape [{n}], got {list(labels.shape)}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ValueError("labels must be integer class indices into JET_CLASSES")
    labels = labels.astype(np.int64)
    bad = (labels < 0) | (labels >= NUM_CLASSES)
    if bad.any():
        raise ValueError(
            f"labels must be in [0, {NUM_CLASSES}) (indices into JET_CLASSES {JET_CLASSES}), "
            f"found {int(labels[bad][0])}"
        )
    return labels


# --------------------------------------------------------------------------------------------------
# Preprocessor
# --------------------------------------------------------------------------------------------------


class JetPreprocessor:
    """Per-class standardisation of jets and particles (plus recentring), reversible and serialisable.

    Attributes:
        num_particles: P, the particle slots per jet (30 or 150 for JetNet).
        recenter: whether :func:`recenter_particles` is applied in ``transform`` and ``inverse``.
        jet_mean, jet_std: [5, J] float64 per JET_CLASSES index, for (pt [GeV], eta, mass [GeV],
            num_particles[, pt_rel_sum][, constituent_mass_rel]); rows of classes absent from the fit
            data are NaN.
        pt_sum: whether the normalised jet features hold the summed pt_rel of the stored particles as
            a fifth feature, to which ``inverse`` rescales the particles; see the module docstring.
        constituent_mass: whether they hold the stored particles' mass in units of the jet pT as the
            last feature, to which ``inverse`` scales the particles' angles; see the module docstring.
        num_jet_features: J, 4 plus one for each of ``pt_sum`` and ``constituent_mass``, the width of
            ``jets_norm``.
        particle_mean, particle_std: [5, 3] float64 for (eta_rel, phi_rel, pt feature) of real
            particles; NaN rows for absent classes.
        pt_feature: "log1m" (log(1 - pt_rel), FPCD's) or "log" (log(pt_rel)); see the module docstring.
        max_delta_r: [5] float64, the largest distance sqrt(eta_rel^2 + phi_rel^2) of a real fit
            particle from its (recentred) jet axis; ``inverse`` confines generated particles to it.
        jet_transform: "quantile" (Gaussianised jet features, the default) or "standard" (FPCD's
            standardisation with jet_mean/jet_std); see the module docstring.
        jet_quantiles: [5] list, per class None or a [J, Q] float64 array of non-decreasing quantiles
            of (pt, eta, mass, dequantised num_particles[, pt_rel_sum][, constituent_mass_rel]) of its fit
            jets; used if "quantile".
    """

    def __init__(
        self,
        num_particles: int,
        recenter: bool = True,
        jet_transform: str = "quantile",
        pt_feature: str = "log1m",
        pt_sum: bool = False,
        constituent_mass: bool = False,
    ):
        if int(num_particles) < 1:
            raise ValueError(f"num_particles must be >= 1, got {num_particles}")
        if jet_transform not in JET_TRANSFORMS:
            raise ValueError(f"jet_transform must be one of {list(JET_TRANSFORMS)}, got {jet_transform!r}")
        if pt_feature not in PT_FEATURES:
            raise ValueError(f"pt_feature must be one of {list(PT_FEATURES)}, got {pt_feature!r}")
        self.num_particles = int(num_particles)
        self.recenter = bool(recenter)
        self.jet_transform = jet_transform
        self.pt_feature = pt_feature
        self.pt_sum = bool(pt_sum)
        self.constituent_mass = bool(constituent_mass)
        self.num_jet_features = len(self.jet_feature_names)
        self.jet_quantiles: list[np.ndarray | None] = [None] * NUM_CLASSES
        self.jet_mean = np.full((NUM_CLASSES, self.num_jet_features), np.nan)
        self.jet_std = np.full((NUM_CLASSES, self.num_jet_features), np.nan)
        self.particle_mean = np.full((NUM_CLASSES, NUM_PARTICLE_FEATURES), np.nan)
        self.particle_std = np.full((NUM_CLASSES, NUM_PARTICLE_FEATURES), np.nan)
        self.fit_counts = np.zeros(NUM_CLASSES, dtype=np.int64)
        # [5] per class: the largest sqrt(eta_rel^2 + phi_rel^2) of a real fit particle (after
        # recentring); NaN (unknown, e.g. an old file) leaves generated jets unconfined.
        self.max_delta_r = np.full(NUM_CLASSES, np.nan)

    def __repr__(self) -> str:
        return (
            f"JetPreprocessor(num_particles={self.num_particles}, recenter={self.recenter}, "
            f"jet_transform={self.jet_transform!r}, pt_feature={self.pt_feature!r}, pt_sum={self.pt_sum}, "
            f"constituent_mass={self.constituent_mass}, fitted_classes={self.fitted_classes})"
        )

    @property
    def jet_feature_names(self) -> list[str]:
        """Names of the J normalised jet features, in the order of ``jets_norm``'s columns."""
        return jet_feature_names(self.pt_sum, self.constituent_mass)

    # ---------------------------------------------------------------------------------------- fitting

    @property
    def fitted_classes(self) -> tuple[str, ...]:
        """Classes (JET_CLASSES names) that have statistics."""
        return tuple(c for i, c in enumerate(JET_CLASSES) if self._is_fitted(i))

    def _is_fitted(self, index: int) -> bool:
        if self.jet_transform == "quantile" and self.jet_quantiles[index] is None:
            return False
        return bool(
            np.all(np.isfinite(self.jet_mean[index]))
            and np.all(np.isfinite(self.jet_std[index]))
            and np.all(np.isfinite(self.particle_mean[index]))
            and np.all(np.isfinite(self.particle_std[index]))
        )

    def _check_classes(self, labels: np.ndarray, what: str) -> None:
        missing = [JET_CLASSES[i] for i in np.unique(labels) if not self._is_fitted(int(i))]
        if missing:
            fitted = ", ".join(self.fitted_classes) or "none"
            raise UnfittedClassError(
                f"{what}: no preprocessing statistics for jet class(es) {', '.join(missing)}; "
                f"the preprocessor was fitted on: {fitted}. Refit (or retrain) including these classes."
            )

    @classmethod
    def fit(
        cls,
        sample: JetSample,
        recenter: bool = True,
        jet_transform: str = "quantile",
        seed: int = 0,
        pt_feature: str = "log1m",
        pt_sum: bool = False,
        constituent_mass: bool = False,
    ) -> JetPreprocessor:
        """Compute per-class statistics on ``sample`` (normally the training split only).

        Jet statistics are over the class's jets; particle statistics over its real (mask = 1)
        particles after recentring (if ``recenter``) and the pt transform (``pt_feature``). Population
        standard deviations; a spread below STD_FLOOR is replaced by 1 (the feature is only shifted).
        With ``jet_transform="quantile"`` also min(JET_QUANTILES, n) quantiles per class of each jet
        feature, the multiplicity dequantised with a generator seeded by ``seed``. ``pt_sum`` adds the
        summed pt_rel of the stored particles as a jet feature, ``constituent_mass`` their mass in units
        of the jet pT (see the module docstring).
        """
        pre = cls(
            sample.num_particles,
            recenter=recenter,
            jet_transform=jet_transform,
            pt_feature=pt_feature,
            pt_sum=pt_sum,
            constituent_mass=constituent_mass,
        )
        feats, jets, mask, labels = pre._features64(sample)
        dequantised = _dequantise(jets, seed) if jet_transform == "quantile" else None
        for index in range(NUM_CLASSES):
            in_class = labels == index
            if not in_class.any():
                continue
            jet_c = jets[in_class]
            real = feats[in_class][mask[in_class]]  # [M, 3], real particles of the class
            if real.shape[0] == 0:
                log.warning("class %s has no real particles in the fit data; skipped", JET_CLASSES[index])
                continue
            pre.jet_mean[index] = jet_c.mean(axis=0)
            pre.jet_std[index] = _floor_std(jet_c.std(axis=0))
            pre.jet_std[index, 3] = max(pre.jet_std[index, 3], MULTIPLICITY_STD_FLOOR)
            pre.particle_mean[index] = real.mean(axis=0)
            pre.particle_std[index] = _floor_std(real.std(axis=0))
            pre.fit_counts[index] = int(in_class.sum())
            pre.max_delta_r[index] = float(np.hypot(real[:, 0], real[:, 1]).max())
            if dequantised is not None:
                levels = np.linspace(0.0, 1.0, max(2, min(JET_QUANTILES, pre.fit_counts[index])))
                pre.jet_quantiles[index] = np.quantile(dequantised[in_class], levels, axis=0).T
        if not pre.fitted_classes:
            raise ValueError("JetPreprocessor.fit: the sample contains no jets")
        return pre

    # -------------------------------------------------------------------------------------- transform

    def _features64(self, sample: JetSample) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Float64 (features [N,P,3], jets [N,J], mask [N,P] bool, labels [N] int) before standardising.

        Applies recentring (if enabled), JetNet ordering (real particles first by decreasing pt_rel; a
        no-op on valid JetNet data) and the pt transform (``pt_feature``); padded slots are 0. With
        ``pt_sum`` the jets get a column with the summed pt_rel of the real particles, with
        ``constituent_mass`` a last column with their mass in units of the jet pT.
        """
        particles = np.asarray(sample.particles)
        jets = np.asarray(sample.jets, dtype=np.float64)
        if particles.ndim != 3 or particles.shape[-1] != 4:
            raise ValueError(f"particles must have shape [N, P, 4], got {list(particles.shape)}")
        if particles.shape[1] != self.num_particles:
            raise ValueError(
                f"this preprocessor is for {self.num_particles} particles per jet, "
                f"got jets with {particles.shape[1]}"
            )
        if jets.shape != (particles.shape[0], NUM_JET_FEATURES):
            raise ValueError(f"jets must have shape [{particles.shape[0]}, 4], got {list(jets.shape)}")
        labels = _as_labels(sample.labels, particles.shape[0])
        p64 = particles.astype(np.float64)
        if not np.all(np.isfinite(p64)) or not np.all(np.isfinite(jets)):
            raise ValueError("particles/jets contain NaN or inf")
        mask = p64[..., 3] > 0
        eta, phi, pt = p64[..., 0], p64[..., 1], p64[..., 2]
        if self.recenter:
            eta, phi = _recenter64(eta, phi, pt, mask)
        order = _order_real_by_pt(pt, mask)
        eta, phi, pt, mask = (_take(a, order) for a in (eta, phi, pt, mask))
        out_of_range = mask & ((pt < 0) | (pt > PT_REL_MAX))
        if out_of_range.any():
            # pt_rel >= 1 (a constituent harder than the jet) has no finite log(1 - pt_rel); such
            # particles are clipped, and the round trip is then exact only for the others.
            log.warning("%d real particles have pt_rel outside [0, 1); clipped", int(out_of_range.sum()))
        pt = np.clip(pt, 0.0, PT_REL_MAX)
        feats = np.stack([eta, phi, self._pt_to_feature(pt)], axis=-1)
        feats = np.where(mask[..., None], feats, 0.0)
        extra = []
        if self.pt_sum:
            extra.append(np.where(mask, pt, 0.0).sum(axis=1))
        if self.constituent_mass:
            extra.append(constituent_mass(eta, phi, pt, mask))
        if extra:
            jets = np.concatenate([jets, np.stack(extra, axis=1)], axis=1)
        return feats, jets, mask, labels

    def _pt_to_feature(self, pt: np.ndarray) -> np.ndarray:
        """pt_rel in [0, 1) -> the pt feature before standardising (float64, any shape)."""
        if self.pt_feature == "log":
            return np.log(np.maximum(pt, PT_REL_MIN))
        # log1p keeps full precision for small pt_rel, where 1 - pt_rel would round.
        return np.log1p(-pt)

    def _feature_to_pt(self, feature: np.ndarray) -> np.ndarray:
        """Inverse of ``_pt_to_feature``, clipped to [0, PT_REL_MAX] (the model can overshoot)."""
        pt = np.exp(feature) if self.pt_feature == "log" else -np.expm1(feature)
        return np.clip(pt, 0.0, PT_REL_MAX)

    def transform(self, sample: JetSample, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normalise a sample for the diffusion models.

        Args:
            sample: JetNet-layout jets with P == num_particles; labels index JET_CLASSES.
            seed: seeds the dequantisation of the multiplicity (``jet_transform="quantile"`` only).

        Returns:
            particles_norm: [N, P, 3] float32 standardised (eta_rel, phi_rel, pt feature), padded
                slots exactly 0; real particles first, by decreasing pt_rel.
            jets_norm: [N, J] float32 standardised or Gaussianised (pt, eta, mass, num_particles[,
                pt_rel_sum][, constituent_mass_rel]), J = ``num_jet_features``.
            mask: [N, P] float32, 1 for real particles (the first num_particles slots of each jet).

        Raises:
            UnfittedClassError if a label's class has no statistics; ValueError for bad shapes/values.
        """
        feats, jets, mask, labels = self._features64(sample)
        self._check_classes(labels, "transform")
        p_norm = (feats - self.particle_mean[labels][:, None, :]) / self.particle_std[labels][:, None, :]
        p_norm = np.where(mask[..., None], p_norm, 0.0)
        if self.jet_transform == "quantile":
            j_norm = self._gaussianise_jets(_dequantise(jets, seed), labels)
        else:
            j_norm = (jets - self.jet_mean[labels]) / self.jet_std[labels]
        return p_norm.astype(np.float32), j_norm.astype(np.float32), mask.astype(np.float32)

    def _hazen_levels(self, index: int) -> np.ndarray:
        """[Q] CDF levels of class ``index``'s quantiles: i / (Q - 1) squeezed into [1/(2n), 1 - 1/(2n)]."""
        quantiles = self.jet_quantiles[index]
        assert quantiles is not None
        # The smallest and largest of n fit jets sit at the Hazen plotting positions, so that every fit
        # value has a finite Gaussian image and the map is exactly invertible on the fit range.
        tail = 0.5 / max(int(self.fit_counts[index]), 1)
        return tail + (1.0 - 2.0 * tail) * np.linspace(0.0, 1.0, quantiles.shape[1])

    def _gaussianise_jets(self, jets: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """[N, J] float64 jet features (multiplicity dequantised) -> [N, J] standard-normal scores."""
        out = np.empty_like(jets)
        for index in np.unique(labels):
            rows = labels == index
            quantiles, levels = self.jet_quantiles[index], self._hazen_levels(index)
            for feature in range(self.num_jet_features):
                x, q = jets[rows, feature], quantiles[feature]
                # Where quantiles tie (a constant feature, a value many jets share) np.interp takes the
                # last of them, and from the other end the first: the middle level of a tie is used.
                last = np.interp(x, q, levels)
                first = np.interp(-x, -q[::-1], levels[::-1])
                out[rows, feature] = ndtri(0.5 * (last + first))
        return out

    def _jets_from_scores(self, jets_norm: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """[N, J] normalised jet features -> float64 jet features, multiplicity still continuous."""
        z = jets_norm.astype(np.float64)
        if self.jet_transform == "standard":
            return z * self.jet_std[labels] + self.jet_mean[labels]
        out = np.empty_like(z)
        for index in np.unique(labels):
            rows = labels == index
            quantiles, levels = self.jet_quantiles[index], self._hazen_levels(index)
            for feature in range(self.num_jet_features):
                # Beyond the Hazen levels np.interp clamps to the fit jets' smallest / largest value.
                out[rows, feature] = np.interp(ndtr(z[rows, feature]), levels, quantiles[feature])
        return out

    # ---------------------------------------------------------------------------------------- inverse

    def _counts(self, raw_multiplicity: np.ndarray) -> np.ndarray:
        """[N] int64 particle counts from ``_jets_from_scores``' continuous multiplicity, in [1, P].

        "standard": the de-standardised num_particles rounded; "quantile": the inverse-mapped
        dequantised n - u, u in [0, 1), rounded up (so a transformed jet gets its n back).
        """
        counts = np.rint(raw_multiplicity) if self.jet_transform == "standard" else np.ceil(raw_multiplicity)
        return np.clip(counts, 1, self.num_particles).astype(np.int64)

    def inverse_jets(self, jets_norm: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Normalised jet features alone back to physical ones (what ``inverse`` returns for the jets).

        Args:
            jets_norm: [N, J] normalised jet features, e.g. the jet network's output.
            labels: [N] class indices into JET_CLASSES.

        Returns:
            [N, 4] float32 (pt [GeV], eta, mass [GeV], num_particles), the multiplicity an integer in
            [1, P] as ``multiplicity_mask`` counts it (JetNet's jet features: no pt_rel_sum).
        """
        jets_norm, labels = self._check_norm_inputs(jets_norm, labels, "inverse_jets")
        jets = self._jets_from_scores(jets_norm, labels)
        jets[:, 3] = self._counts(jets[:, 3])
        return jets[:, :NUM_JET_FEATURES].astype(np.float32)

    def _check_norm_inputs(self, jets_norm: Any, labels: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
        jets_norm = np.asarray(jets_norm)
        if jets_norm.ndim != 2 or jets_norm.shape[1] != self.num_jet_features:
            raise ValueError(
                f"{what}: jets_norm must have shape [N, {self.num_jet_features}] "
                f"({', '.join(self.jet_feature_names)}), got {list(jets_norm.shape)}"
            )
        labels = _as_labels(labels, jets_norm.shape[0])
        bad = ~np.isfinite(jets_norm)
        if bad.any():
            raise ValueError(f"{what}: jets_norm contains {int(bad.sum())} NaN/inf values")
        self._check_classes(labels, what)
        return jets_norm, labels

    def multiplicity_mask(self, jets_norm: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Particle mask from normalised jet features (the sampler masks the particle noise with it).

        Args:
            jets_norm: [N, J] normalised jet features (as from ``transform`` or the jet model).
            labels: [N] class indices into JET_CLASSES.

        Returns:
            [N, P] float32, 1 in the first n slots of each jet where n is the multiplicity the jet
            features map back to (``_counts``), clipped to [1, P]; the same mask ``inverse`` uses.
        """
        jets_norm, labels = self._check_norm_inputs(jets_norm, labels, "multiplicity_mask")
        counts = self._counts(self._jets_from_scores(jets_norm, labels)[:, 3])
        return (np.arange(self.num_particles)[None, :] < counts[:, None]).astype(np.float32)

    def inverse(
        self, particles_norm: np.ndarray, jets_norm: np.ndarray, labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Undo ``transform``: normalised (generated) features back to JetNet layout.

        The multiplicity n of each jet is the num_particles its jet features map back to (rounded for
        "standard", rounded up for the dequantised "quantile") clipped to [1, P]; the first n slots are the
        real particles (as in ``multiplicity_mask``), the others are set to exactly 0 whatever the model put
        there. pt_rel (1 - exp(x) or exp(x), by ``pt_feature``) is clipped to [0, 1) (the model can overshoot
        the physical range); with ``pt_sum`` each jet's pt_rel are then scaled by one factor so that they sum
        to the jet's generated pt_rel_sum. The real particles are then sorted by decreasing pt_rel, because
        the particle model is permutation-equivariant and its slot order means nothing while the JetNet format
        and evaluation code (leading-particle observables) assume that order; and, if ``recenter``, the jets
        are recentred as in FPCD, so generated jets are canonical too. Last, a particle farther from the jet
        axis than any real particle of its class in the fit data (``max_delta_r``, about the jet radius R =
        0.8) is moved radially onto that distance: the clustering put every truth constituent inside, so a
        particle outside is a model error (:func:`confine_to_cone`); confining and recentring alternate
        ``CONFINE_ITERATIONS`` times. With ``constituent_mass``, finally, each jet's angles are scaled by
        one factor so that its particles' mass is the generated constituent_mass_rel
        (:func:`scaled_to_mass`, within the cone).

        Args:
            particles_norm: [N, P, 3] standardised (eta_rel, phi_rel, pt feature).
            jets_norm: [N, J] normalised (pt, eta, mass, num_particles[, pt_rel_sum][,
                constituent_mass_rel]), as ``transform`` makes them.
            labels: [N] class indices into JET_CLASSES.

        Returns:
            particle_features: [N, P, 4] float32 (eta_rel, phi_rel, pt_rel, mask).
            jet_features: [N, 4] float32 (pt [GeV], eta, mass [GeV], num_particles), with
            num_particles equal to the mask sum, so ``validate_arrays`` accepts the pair.
        """
        jets_norm, labels = self._check_norm_inputs(jets_norm, labels, "inverse")
        particles_norm = np.asarray(particles_norm)
        expected = (jets_norm.shape[0], self.num_particles, NUM_PARTICLE_FEATURES)
        if particles_norm.shape != expected:
            raise ValueError(
                f"inverse: particles_norm must have shape {list(expected)}, got {list(particles_norm.shape)}"
            )
        jets = self._jets_from_scores(jets_norm, labels)
        counts = self._counts(jets[:, 3])
        mask = np.arange(self.num_particles)[None, :] < counts[:, None]
        # Only real slots must be finite: the model's output in padded slots is discarded anyway.
        bad = mask[..., None] & ~np.isfinite(particles_norm)
        if bad.any():
            raise ValueError(
                f"inverse: particles_norm contains {int(bad.sum())} NaN/inf values in real slots"
            )
        p64 = np.where(mask[..., None], particles_norm.astype(np.float64), 0.0)
        feats = p64 * self.particle_std[labels][:, None, :] + self.particle_mean[labels][:, None, :]
        eta, phi = feats[..., 0], feats[..., 1]
        pt = self._feature_to_pt(feats[..., 2])
        eta, phi, pt = (np.where(mask, a, 0.0) for a in (eta, phi, pt))
        if self.pt_sum:
            pt = _scaled_to_sum(pt, jets[:, self.jet_feature_names.index(PT_SUM_FEATURE)])
        order = _order_real_by_pt(pt, mask)
        eta, phi, pt = (_take(a, order) for a in (eta, phi, pt))  # mask is a prefix: unchanged
        if self.recenter:
            eta, phi = _recenter64(eta, phi, pt, mask)
        # Confining moves the axis a little and recentring moves particles a little: alternating a few
        # times leaves the jets exactly recentred with any overshoot of the cone far below 1e-3. Only
        # jets with a particle outside are touched, so the others (nearly all) stay bit-for-bit as before.
        radius = self.max_delta_r[labels]
        for _ in range(CONFINE_ITERATIONS):
            moved = _outside_cone(eta, phi, radius).any(axis=1)
            if not moved.any():
                break
            eta[moved], phi[moved] = confine_to_cone(eta[moved], phi[moved], radius[moved])
            if not self.recenter:
                break
            eta[moved], phi[moved] = _recenter64(eta[moved], phi[moved], pt[moved], mask[moved])
        if self.constituent_mass:
            # Last, because recentring (a boost along the beam and a rotation) leaves the mass as it is,
            # scaling about the recentred axis keeps the jet recentred, and the bound keeps it in the cone.
            target = jets[:, self.jet_feature_names.index(CONSTITUENT_MASS_FEATURE)]
            eta, phi = scaled_to_mass(eta, phi, pt, mask, target, radius)
        particle_features = np.stack([eta, phi, pt, mask.astype(np.float64)], axis=-1).astype(np.float32)
        jets[:, 3] = counts
        return particle_features, jets[:, :NUM_JET_FEATURES].astype(np.float32)

    # ------------------------------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; classes without statistics have ``null`` rows."""

        def rows(arr: np.ndarray) -> list[list[float] | None]:
            return [[float(v) for v in arr[i]] if self._is_fitted(i) else None for i in range(NUM_CLASSES)]

        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "num_particles": self.num_particles,
            "recenter": self.recenter,
            "classes": list(JET_CLASSES),
            "jet_features": self.jet_feature_names,
            "particle_features": particle_feature_names(self.pt_feature),
            "jet_mean": rows(self.jet_mean),
            "jet_std": rows(self.jet_std),
            "particle_mean": rows(self.particle_mean),
            "particle_std": rows(self.particle_std),
            "fit_counts": [int(c) for c in self.fit_counts],
            "max_delta_r": [
                float(r) if self._is_fitted(i) and np.isfinite(r) else None
                for i, r in enumerate(self.max_delta_r)
            ],
            "jet_transform": self.jet_transform,
            "jet_quantiles": [
                q.tolist() if self._is_fitted(i) else None for i, q in enumerate(self.jet_quantiles)
            ]
            if self.jet_transform == "quantile"
            else None,
            "pt_feature": self.pt_feature,
            "pt_sum": self.pt_sum,
            "constituent_mass": self.constituent_mass,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> JetPreprocessor:
        """Rebuild from ``to_dict`` output, validating every key (:mod:`gsgm.data.preprocessing_file`).

        Raises:
            PreprocessingFileError: naming ``source``, the key and, for the statistics, row and class.
        """
        parsed = parse_preprocessing_file(data, source)
        # Files written before the quantile transform existed standardised the jets.
        pre = cls(
            parsed.num_particles,
            recenter=parsed.recenter,
            jet_transform=parsed.jet_transform or "standard",
            pt_feature=parsed.pt_feature or "log1m",  # files before the choice: FPCD's
            pt_sum=bool(parsed.pt_sum),  # files before the choice: JetNet's four jet features
            constituent_mass=bool(parsed.constituent_mass),
        )
        if parsed.jet_quantiles is not None:
            pre.jet_quantiles = [
                None if q is None else np.asarray(q, np.float64) for q in parsed.jet_quantiles
            ]
        pre.jet_mean, pre.jet_std = parsed.array("jet_mean"), parsed.array("jet_std")
        pre.particle_mean, pre.particle_std = parsed.array("particle_mean"), parsed.array("particle_std")
        if parsed.fit_counts is not None:
            pre.fit_counts = np.asarray(parsed.fit_counts, dtype=np.int64)
        if parsed.max_delta_r is not None:
            pre.max_delta_r = np.array([np.nan if r is None else r for r in parsed.max_delta_r], np.float64)
        return pre

    def save(self, path: str | os.PathLike) -> Path:
        """Write the statistics as JSON to ``path`` (e.g. ``RUN/preprocessing.json``) atomically."""
        if not self.fitted_classes:
            raise ValueError("refusing to save a JetPreprocessor without statistics (call fit first)")
        path = Path(path)
        write_json_atomic(path, self.to_dict())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> JetPreprocessor:
        """Read a file written by ``save``.

        Raises:
            FileNotFoundError naming the file if it does not exist; PreprocessingFileError naming the
            file (and key) if it is not valid JSON or a key is missing or malformed.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"preprocessing file not found: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise PreprocessingFileError(f"preprocessing file {path}: not valid JSON ({err})") from err
        return cls.from_dict(data, source=str(path))


def confine_to_cone(eta: np.ndarray, phi: np.ndarray, radius: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move particles farther than ``radius`` from the jet axis radially onto that distance.

    Args:
        eta, phi: [N, P] eta_rel and phi_rel relative to the jet axis (padded slots are 0 and stay 0).
        radius: [N] largest allowed sqrt(eta^2 + phi^2) per jet; NaN leaves that jet unchanged.

    Returns:
        (eta, phi) [N, P] float64; particles inside the radius are bit-for-bit unchanged.
    """
    eta, phi = np.asarray(eta, np.float64), np.asarray(phi, np.float64)
    radius = np.asarray(radius, np.float64)
    outside = _outside_cone(eta, phi, radius)
    scale = np.divide(radius[:, None], np.hypot(eta, phi), out=np.ones_like(eta), where=outside)
    return np.where(outside, eta * scale, eta), np.where(outside, phi * scale, phi)


def _outside_cone(eta: np.ndarray, phi: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """[N, P] bool: the particle lies farther than the [N] ``radius`` (NaN: never) from the axis."""
    radius = radius[:, None]
    return np.isfinite(radius) & (np.hypot(eta, phi) > radius)


def constituent_mass(eta: np.ndarray, phi: np.ndarray, pt: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Invariant mass of each jet's real particles, taken massless, in units of the jet pT.

    Four-vectors pt_rel (cosh eta, cos phi, sin phi, sinh eta) with the relative coordinates, as JetNet's
    ``jet_features`` (and so W1M) builds them; the mass does not change under the shift of eta (a boost
    along the beam) and of phi (a rotation) that makes the coordinates relative.

    Args:
        eta, phi, pt: [N, P] eta_rel, phi_rel (rad) and pt_rel of the particles.
        mask: [N, P] bool or 0/1, real particles.

    Returns:
        [N] float64 m / pT_jet, >= 0 (0 for a jet with fewer than two particles).
    """
    pt = np.where(np.asarray(mask) > 0, np.asarray(pt, np.float64), 0.0)
    eta, phi = np.asarray(eta, np.float64), np.asarray(phi, np.float64)
    energy = (pt * np.cosh(eta)).sum(axis=1)
    px, py = (pt * np.cos(phi)).sum(axis=1), (pt * np.sin(phi)).sum(axis=1)
    pz = (pt * np.sinh(eta)).sum(axis=1)
    return np.sqrt(np.maximum(energy**2 - px**2 - py**2 - pz**2, 0.0))


def scaled_to_mass(
    eta: np.ndarray,
    phi: np.ndarray,
    pt: np.ndarray,
    mask: np.ndarray,
    target: np.ndarray,
    radius: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Scale each jet's (eta_rel, phi_rel) by one factor s >= 0 so that its :func:`constituent_mass` is
    ``target``, keeping every particle within ``radius`` of the axis.

    The mass of massless particles grows monotonically with s (each pair adds pt_i pt_j (cosh(s deta) -
    cos(s dphi)), increasing while |s dphi| < pi, which the bound ensures for any radius below pi / 2),
    so s is found by bisection on [0, s_max], s_max the factor that puts the farthest particle on
    ``radius`` (no bound where the radius is NaN: then s_max = 4). A target beyond the mass at s_max is
    met as s_max; a jet with fewer than two particles (mass 0 at every s) is left as it is. Scaling about
    the axis keeps a recentred jet recentred (its pT-weighted centroid stays at 0).

    Args:
        eta, phi, pt: [N, P] eta_rel, phi_rel (rad) and pt_rel; padded slots 0.
        mask: [N, P] bool or 0/1, real particles.
        target: [N] the wanted mass in units of the jet pT (>= 0).
        radius: [N] largest allowed sqrt(eta_rel^2 + phi_rel^2), NaN for none.

    Returns:
        (eta, phi) [N, P] float64, scaled.
    """
    eta, phi = np.asarray(eta, np.float64), np.asarray(phi, np.float64)
    real = np.asarray(mask) > 0
    target = np.maximum(np.asarray(target, np.float64), 0.0)
    radius = np.asarray(radius, np.float64)
    farthest = np.where(real, np.hypot(eta, phi), 0.0).max(axis=1, initial=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.where(np.isfinite(radius) & (farthest > 0), radius / farthest, 4.0)
    low, high = np.zeros_like(bound), bound
    for _ in range(MASS_SCALE_ITERATIONS):
        middle = 0.5 * (low + high)
        heavy = constituent_mass(eta * middle[:, None], phi * middle[:, None], pt, real) > target
        low, high = np.where(heavy, low, middle), np.where(heavy, middle, high)
    scale = 0.5 * (low + high)
    # A single particle (or none) has mass 0 at every scale: nothing to match, leave it untouched.
    scale = np.where(real.sum(axis=1) >= 2, scale, 1.0)
    return eta * scale[:, None], phi * scale[:, None]


def _dequantise(jets: np.ndarray, seed: int) -> np.ndarray:
    """A float64 copy of [N, J] jets with num_particles n replaced by n - u, u ~ U[0, 1) seeded.

    A continuous multiplicity has no point masses for the quantile map; ceil(n - u) recovers n.
    """
    out = np.array(jets, dtype=np.float64)
    out[:, 3] -= np.random.default_rng(seed).uniform(0.0, 1.0, size=out.shape[0])
    return out


def _scaled_to_sum(pt: np.ndarray, target: np.ndarray) -> np.ndarray:
    """[N, P] pt_rel (0 in padded slots) times one factor per jet so that each row sums to [N] ``target``.

    A jet whose pt_rel are all 0 is left as it is; the result is clipped to [0, PT_REL_MAX] again, so
    a target that would push one particle past the jet's pT is met only approximately.
    """
    total = pt.sum(axis=1)
    factor = np.divide(target, total, out=np.ones_like(total), where=total > 0)
    return np.clip(pt * factor[:, None], 0.0, PT_REL_MAX)


def _floor_std(std: np.ndarray) -> np.ndarray:
    return np.where(std < STD_FLOOR, 1.0, std)
