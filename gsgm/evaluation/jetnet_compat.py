"""Thin adapters around ``jetnet.evaluation`` (0.2.5): seeding, warnings, numpy 2, FPND availability.

Nothing here computes a metric. It only makes the field's implementations usable from gsgm:

* :func:`seeded_jetnet` — jetnet's W1 and COV/MMD functions draw their resamples from a module-level
  ``numpy.random.default_rng()`` without a seed, so two runs give different numbers. The context manager
  swaps in a seeded generator for the duration of a call and restores jetnet's afterwards, which makes
  a report reproducible from its seed.
* :func:`emd_numpy2_compat` — ``cov_mmd`` computes Energy Mover's Distances through ``energyflow`` ->
  ``wasserstein`` 1.1.0 (the latest release), whose Python layer calls
  ``np.array(event[:, 0], ..., copy=False)``. numpy 2 turned ``copy=False`` into "never copy" and raises
  ``ValueError: Unable to avoid copy`` because a column of a [P, 3] event is not contiguous. The context
  manager gives that one module a numpy whose ``array(copy=False)`` means numpy 1's "copy if needed"
  (numpy 2 spells it ``copy=None``); it is applied only when the failure is actually present.
* :func:`single_threaded_blas` — FPD and KPD are many small matrix products; with OpenBLAS's default
  of one thread per core they ran 10-50x slower on a shared 2-core machine (threads spinning for
  cores that other processes hold) than with one thread, and gain little from threads otherwise.
* :func:`fpnd_status` — FPND runs a ParticleNet that needs ``torch_geometric`` (a dependency of gsgm, a
  pure-Python wheel) and ``torch_cluster`` (compiles from source for minutes; when it is absent
  :mod:`gsgm.evaluation.knn_fallback` provides its one function exactly in pure torch).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np

# FPND is defined by jetnet only for these classes and this particle count (its shipped ParticleNet
# and reference statistics).
FPND_CLASSES: tuple[str, ...] = ("g", "q", "t")
FPND_NUM_PARTICLES = 30
# Modules FPND needs beyond jetnet itself, with the pip name to install (torch_cluster is optional:
# gsgm.evaluation.knn_fallback stands in for it).
FPND_MODULES: tuple[tuple[str, str], ...] = (("torch_geometric", "torch-geometric"),)


@contextlib.contextmanager
def seeded_jetnet(seed: int) -> Iterator[None]:
    """Run jetnet's resampling metrics (w1m, w1p, w1efp, cov_mmd) with ``default_rng(seed)``."""
    from jetnet.evaluation import gen_metrics

    saved = gen_metrics.rng
    gen_metrics.rng = np.random.default_rng(seed)
    try:
        yield
    finally:
        gen_metrics.rng = saved


@contextlib.contextmanager
def quiet_jetnet_warnings() -> Iterator[None]:
    """Silence two warnings jetnet emits on every call; every other warning still shows.

    * "Recommended number of jets ... is 50,000": the report records every sample size.
    * SciPy's deprecation of ``sqrtm(..., disp=False)``, which jetnet's FPD calls (200 times per FPD).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Recommended number of", category=RuntimeWarning)
        warnings.filterwarnings(
            "ignore", message="The `disp` argument is deprecated", category=DeprecationWarning
        )
        yield


class _CopyIfNeededNumpy(ModuleType):
    """numpy, except that ``array(..., copy=False)`` has numpy 1's meaning ("copy only if needed")."""

    def __init__(self) -> None:
        super().__init__("numpy")

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    @staticmethod
    def array(obj: Any, *args: Any, copy: bool | None = True, **kwargs: Any) -> np.ndarray:
        return np.array(obj, *args, copy=None if copy is False else copy, **kwargs)


def _emd_needs_shim() -> bool:
    """True when wasserstein's event storage fails under this numpy (checked on a 2-particle event)."""
    from energyflow.emd import emds

    event = np.array([[0.5, 0.0, 0.0], [0.5, 0.1, 0.1]])
    try:
        emds([event], [event], n_jobs=1)
    except ValueError as err:
        if "copy" in str(err):
            return True
        raise
    return False


_SHIM_NEEDED: bool | None = None


@contextlib.contextmanager
def emd_numpy2_compat() -> Iterator[None]:
    """Let ``energyflow.emd.emds`` (and so ``jetnet.evaluation.cov_mmd``) run under numpy 2.

    A no-op when the installed ``wasserstein`` works with the installed numpy.
    """
    global _SHIM_NEEDED
    if _SHIM_NEEDED is None:
        _SHIM_NEEDED = _emd_needs_shim()
    if not _SHIM_NEEDED:
        yield
        return
    module = importlib.import_module("wasserstein.wasserstein")
    saved = module.np
    module.np = _CopyIfNeededNumpy()
    try:
        yield
    finally:
        module.np = saved


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS to one thread inside the block (no-op when threadpoolctl is not installed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def fpnd_status() -> tuple[bool, str]:
    """Whether jetnet's FPND can run here: ``(True, "")`` or ``(False, reason)``.

    Only checks that the optional modules are importable (without importing them, which is slow);
    an import failure at run time is reported by the caller with the same wording.
    """
    for module, pip_name in FPND_MODULES:
        if importlib.util.find_spec(module) is None:
            return False, (
                f"{module} is not installed (pip name {pip_name}; jetnet's FPND runs a ParticleNet that "
                "needs it; `make install` installs it)"
            )
    return True, ""


def fpnd_defined(jet_class: str, num_particles: int) -> tuple[bool, str]:
    """Whether jetnet defines FPND for ``jet_class`` at ``num_particles``: ``(True, "")`` or the reason."""
    if num_particles != FPND_NUM_PARTICLES:
        return False, f"FPND is defined for {FPND_NUM_PARTICLES} particles only, not {num_particles}"
    if jet_class not in FPND_CLASSES:
        return False, f"FPND is defined for classes {', '.join(FPND_CLASSES)} only, not {jet_class}"
    return True, ""
