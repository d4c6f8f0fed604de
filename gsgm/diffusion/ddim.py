"""Deterministic DDIM sampler (Song et al. 2021; FPCD eq. 4) for any schedule and denoiser.

The sampler takes a denoiser in the convention of :mod:`gsgm.diffusion.denoisers`
(``denoiser(z [B, ...], t [B], **cond) -> x0_hat``, ``t`` the schedule's time) and a schedule
(:mod:`gsgm.diffusion.schedules`); one step from ``t`` to ``s < t`` is

    z_s = alpha_s x0_hat + sigma_s eps_hat

with ``eps_hat`` the denoiser's own noise estimate where it has one (adapters' ``predict``), else
``(z_t - alpha_t x0_hat) / sigma_t``. A v-network (:class:`~gsgm.diffusion.denoisers.VDenoiser`) gives
``eps_hat = sigma z + alpha v``, which never divides, so the VP-cosine step is finite on the whole
closed interval: ``t = 1`` (alpha = 0) is a valid start and a step to ``s = 0`` (sigma_s = 0
exactly) returns ``x0_hat`` bit for bit.

``solver="dpm++2m"`` runs the second-order multistep solver DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++",
algorithm 2) on the same grid with the same number of denoiser evaluations: each step is the DDIM
step above with ``x0_hat`` replaced by ``x0_hat + (x0_hat - x0_prev) h / (2 h_prev)``, where
``h = lambda_s - lambda_t`` is the step in log(alpha / sigma) and ``x0_prev`` the previous step's
estimate (the first step, a step after one from alpha = 0 and the last step stay first order, i.e.
DDIM). Why: DDIM rotates ``z`` by the whole angle of each step, which is exact for a point mass but
shrinks data near a unit Gaussian: there the exact flow keeps ``z`` fixed while a DDIM step multiplies
it by ``cos(pi / (2 N))``, so N steps of the VP-cosine grid narrow it by ``cos(pi / (2 N)) ** N``
(0.981 at 64 steps). FPCD's jet network generates Gaussianised jet features, and 64 DDIM steps gave
them 1-4 % too little spread (BENCHMARKS.md, "The DDIM narrowing").

The step loop runs inside a ``tf.function``. Compiled functions are cached per denoiser object (per
instance and method for bound methods; weakly: the cache does not keep the denoiser alive) and schedule
value, so repeated calls with the *same* callable do not retrace; new batch sizes and step counts cost
at most one relaxed retrace (``reduce_retracing``), because the time grid is a tensor argument. Tracing
a network takes 0.2-5 s on CPU, so for generation in many batches prefer one stable callable plus
``cond`` over a fresh closure per batch. Python state the denoiser reads (other than its arguments) is
frozen at trace time; conditions that change between calls must arrive through ``cond``.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf

from gsgm.diffusion.denoisers import Denoiser, Prediction, eps_of, predict
from gsgm.diffusion.schedules import Schedule, scales_like
from gsgm.diffusion.tensors import as_float_tensor, expand_like


def ddim_step(z_t, prediction: Prediction | tf.Tensor, t, s, schedule: Schedule) -> tf.Tensor:
    """One deterministic DDIM step from time ``t`` to ``s < t``.

    Args:
        z_t: latent ``[B, ...]``.
        prediction: the denoiser's :class:`~gsgm.diffusion.denoisers.Prediction` at ``(z_t, t)``, or
            its ``x0_hat`` alone (then ``eps_hat`` divides by ``sigma_t``: keep ``t`` off the data end).
        t, s: times of ``schedule``, scalars or ``[B]``.
        schedule: the noise schedule.

    Returns:
        ``z_s`` with the shape and dtype of ``z_t``.
    """
    z_t = as_float_tensor(z_t)
    if not isinstance(prediction, Prediction):
        prediction = Prediction(as_float_tensor(prediction, z_t.dtype))
    alpha_t, sigma_t = scales_like(schedule, t, z_t)
    alpha_s, sigma_s = scales_like(schedule, s, z_t)
    eps_hat = eps_of(prediction, z_t, alpha_t, sigma_t)
    return alpha_s * prediction.x0 + sigma_s * eps_hat


def _predict_at(denoiser: Denoiser, z: tf.Tensor, t: tf.Tensor, cond) -> Prediction:
    """Evaluate the denoiser at scalar time ``t`` for the whole batch."""
    return predict(denoiser, z, tf.fill(tf.shape(z)[:1], t), cond)


def _masked(z: tf.Tensor, mask) -> tf.Tensor:
    return z if mask is None else z * mask


def _make_loop(get_denoiser: Callable[[], Denoiser], schedule: Schedule):
    """The whole sampling loop, as a Python function to be wrapped in ``tf.function``."""

    def loop(z, grid, mask, cond):
        denoiser = get_denoiser()
        num_steps = tf.shape(grid)[0] - 1

        def body(i, z):
            t, s = grid[i], grid[i + 1]
            z_next = _masked(ddim_step(z, _predict_at(denoiser, z, t, cond), t, s, schedule), mask)
            return i + 1, tf.ensure_shape(z_next, z.shape)

        # parallel_iterations=1: steps are sequential anyway; avoids prefetching the next iteration.
        _, z = tf.while_loop(lambda i, _: i < num_steps, body, (tf.constant(0), z), parallel_iterations=1)
        return z

    return loop


#: The solvers ``ddim_sample`` runs (both make one denoiser evaluation per step).
SOLVERS = ("ddim", "dpm++2m")


def multistep_coefficients(schedule: Schedule, grid: np.ndarray) -> np.ndarray:
    """``[N, 3]`` float64 (a, b, c) of DPM-Solver++(2M) on ``grid`` (N + 1 decreasing times).

    Step i goes from ``t = grid[i]`` to ``s = grid[i + 1]`` as ``z_s = a z_t + b (x0 + c (x0 -
    x0_prev))``: ``a = sigma_s / sigma_t`` and ``b = alpha_s - sigma_s alpha_t / sigma_t`` make it the
    DDIM step for c = 0, and ``c = h / (2 h_prev)`` with ``h = lambda_s - lambda_t``, lambda =
    log(alpha / sigma). c is 0 on the first step (no previous estimate), after a step from alpha = 0
    (h_prev infinite) and on the last step (DPM-Solver++'s first-order final step: h is infinite where
    sigma_s = 0). ``sigma_t`` must be positive on every step's start, which holds for every schedule
    whose grid only ends at sigma = 0.
    """
    times = tf.constant(np.asarray(grid, np.float64))
    alpha, sigma = (np.asarray(v, np.float64) for v in schedule.alpha_sigma(times))
    if np.any(sigma[:-1] <= 0.0):
        raise ValueError("dpm++2m needs sigma > 0 at the start of every step; this grid reaches 0 earlier")
    with np.errstate(divide="ignore"):
        lam = np.log(alpha) - np.log(sigma)  # -inf at alpha = 0, +inf at sigma = 0
    steps = len(grid) - 1
    coefficients = np.zeros((steps, 3))
    coefficients[:, 0] = sigma[1:] / sigma[:-1]
    coefficients[:, 1] = alpha[1:] - sigma[1:] * alpha[:-1] / sigma[:-1]
    with np.errstate(invalid="ignore"):
        h = lam[1:] - lam[:-1]
    for i in range(1, steps - 1):
        if np.isfinite(h[i - 1]) and np.isfinite(h[i]) and h[i - 1] > 0.0:
            coefficients[i, 2] = h[i] / (2.0 * h[i - 1])
    return coefficients


def _multistep_update(z, x0, x0_prev, coefficients_i, mask):
    a, b, c = tf.unstack(coefficients_i)
    return _masked(a * z + b * (x0 + c * (x0 - x0_prev)), mask)


def _make_multistep_loop(get_denoiser: Callable[[], Denoiser], schedule: Schedule):
    """The DPM-Solver++(2M) loop, as a Python function to be wrapped in ``tf.function``."""

    def loop(z, grid, coefficients, mask, cond):
        denoiser = get_denoiser()
        num_steps = tf.shape(grid)[0] - 1

        def body(i, z, x0_prev):
            x0 = _predict_at(denoiser, z, grid[i], cond).x0
            z_next = _multistep_update(z, x0, x0_prev, coefficients[i], mask)
            return i + 1, tf.ensure_shape(z_next, z.shape), x0

        state = (tf.constant(0), z, tf.zeros_like(z))
        _, z, _ = tf.while_loop(lambda i, *_: i < num_steps, body, state, parallel_iterations=1)
        return z

    return loop


def _make_multistep_step(get_denoiser: Callable[[], Denoiser], schedule: Schedule):
    """One DPM-Solver++(2M) step ``-> (z_s, x0_hat)``, for ``tf.function`` (progress-bar mode)."""

    def step(z, x0_prev, t, coefficients_i, mask, cond):
        x0 = _predict_at(get_denoiser(), z, t, cond).x0
        return _multistep_update(z, x0, x0_prev, coefficients_i, mask), x0

    return step


def _make_step(get_denoiser: Callable[[], Denoiser], schedule: Schedule):
    """A single step, as a Python function to be wrapped in ``tf.function`` (progress-bar mode)."""

    def step(z, t, s, mask, cond):
        return _masked(ddim_step(z, _predict_at(get_denoiser(), z, t, cond), t, s, schedule), mask)

    return step


# owner -> {(method function or None, kind, jit_compile, schedule): tf.function}. The owner is the
# denoiser itself, or for a bound method (``obj.denoise``, a new object at every attribute access) the
# instance, so that passing ``obj.denoise`` twice reuses the compiled function. Weak keys: the cache
# never keeps a model alive.
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def forget_compiled_samplers() -> None:
    """Drop every cached compiled sampling loop, so that the next calls trace afresh.

    Which graph a batch runs on depends on the shapes seen before (the first shape gets its own
    trace, later ones a relaxed trace), and the two graphs can differ in the last bit of float32
    results. A resumable sampler calls this before each chunk, so that a chunk's samples depend
    only on the chunk, not on which chunks the same process sampled before it.
    """
    _COMPILED.clear()


def _compiled(denoiser: Denoiser, schedule: Schedule, kind: str, jit_compile: bool):
    """The cached ``tf.function`` (``kind``: a key of ``_MAKERS``) for ``denoiser``."""
    if inspect.ismethod(denoiser):
        owner, method = denoiser.__self__, denoiser.__func__
    else:
        owner, method = denoiser, None
    try:
        per_owner = _COMPILED.setdefault(owner, {})
        # The compiled function must not hold the owner strongly, or the weak key would never die.
        owner_ref = weakref.ref(owner)
        if method is None:
            get_denoiser = owner_ref
        else:

            def get_denoiser():
                return method.__get__(owner_ref())

    except TypeError:  # not hashable or not weak-referenceable: compile without caching
        per_owner = {}

        def get_denoiser():
            return denoiser

    key = (method, kind, bool(jit_compile), schedule)
    if key not in per_owner:
        per_owner[key] = tf.function(
            _MAKERS[kind](get_denoiser, schedule), jit_compile=bool(jit_compile), reduce_retracing=True
        )
    return per_owner[key]


_MAKERS = {
    "loop": _make_loop,
    "step": _make_step,
    "multistep_loop": _make_multistep_loop,
    "multistep_step": _make_multistep_step,
}


def ddim_sample(
    denoiser: Denoiser,
    x_T,
    schedule: Schedule,
    num_steps: int,
    *,
    mask=None,
    cond: Mapping[str, tf.Tensor] | None = None,
    progress: bool = False,
    jit_compile: bool = False,
    dtype=tf.float32,
    solver: str = "ddim",
) -> tf.Tensor:
    """Generate samples by integrating the probability-flow ODE from the noise end to the data end with DDIM.

    Runs on ``schedule.sampling_times(num_steps)`` and makes exactly ``num_steps`` denoiser
    evaluations, at every grid time but the last. Grids that end where sigma = 0 (VP cosine, VE,
    discrete DDPM) return the last data estimate itself.

    Args:
        denoiser: ``denoiser(z [B, ...], t [B], **cond) -> x0_hat [B, ...]`` (or an adapter).
        x_T: starting point at the first grid time (standard normal for VP schedules, ``sigma_max``
            times it for VE), ``[B, ...]`` (tensor or numpy).
        schedule: the noise schedule; part of the compiled-function cache key.
        num_steps: number of DDIM steps (512 for the FPCD baseline, 8 or 1 after distillation).
        mask: optional ``[B, P]`` / ``[B, P, 1]`` mask (1 = real particle). The noise and every
            intermediate ``z`` are multiplied by it, so padded entries are exactly 0 in the output
            (masked noise plus zero-padding, FPCD section III).
        cond: tensors forwarded to the denoiser as keyword arguments (e.g. conditions); they are
            inputs of the compiled function, so new values do not retrace.
        progress: show a tqdm bar. Steps then run one by one from Python (each step compiled), so the
            bar advances; otherwise the whole loop is one compiled ``tf.while_loop``.
        jit_compile: compile with XLA. Off by default: on CPU (2 cores, TF 2.21) it gained at most ~8 %
            per step for stand-in networks (``benchmarks/bench_ddim_overhead.py``), within the noise,
            while XLA recompiles for every new batch size and step count. Worth measuring on GPU.
        dtype: floating dtype of the computation (``x_T``, ``mask`` and the times are cast to it).
        solver: "ddim" (FPCD eq. 4) or "dpm++2m" (DPM-Solver++(2M), second order, the same denoiser
            evaluations; see the module docstring). A distilled student was trained on DDIM steps
            of its teacher and must sample with "ddim".

    Returns:
        ``x_0`` as a tf tensor with the shape of ``x_T``; call ``.numpy()`` for an array.
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    times = schedule.sampling_times(num_steps)  # validates num_steps
    grid = tf.constant(times, dtype)
    z = as_float_tensor(x_T, dtype)
    cond = dict(cond or {})
    if mask is not None:
        mask = expand_like(as_float_tensor(mask, dtype), z)
        z = z * mask

    if solver == "dpm++2m":
        # The coefficients of the grid the network sees (float32 times in float32 sampling).
        coefficients = tf.constant(multistep_coefficients(schedule, grid.numpy()), dtype)
        if not progress:
            loop = _compiled(denoiser, schedule, "multistep_loop", jit_compile)
            return loop(z, grid, coefficients, mask, cond)
        from tqdm.auto import tqdm  # CLI-only dependency, imported lazily

        step = _compiled(denoiser, schedule, "multistep_step", jit_compile)
        x0_prev = tf.zeros_like(z)
        for i in tqdm(range(num_steps), desc="DPM-Solver++(2M)", unit="step"):
            z, x0_prev = step(z, x0_prev, grid[i], coefficients[i], mask, cond)
        return z

    if not progress:
        return _compiled(denoiser, schedule, "loop", jit_compile)(z, grid, mask, cond)

    from tqdm.auto import tqdm  # CLI-only dependency, imported lazily

    step = _compiled(denoiser, schedule, "step", jit_compile)
    for i in tqdm(range(num_steps), desc="DDIM", unit="step"):
        z = step(z, grid[i], grid[i + 1], mask, cond)
    return z
