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
    """The cached ``tf.function`` (``kind`` = "loop" or "step") for ``denoiser``."""
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
        make = _make_loop if kind == "loop" else _make_step
        per_owner[key] = tf.function(
            make(get_denoiser, schedule), jit_compile=bool(jit_compile), reduce_retracing=True
        )
    return per_owner[key]


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

    Returns:
        ``x_0`` as a tf tensor with the shape of ``x_T``; call ``.numpy()`` for an array.
    """
    grid = tf.constant(schedule.sampling_times(num_steps), dtype)  # validates num_steps
    z = as_float_tensor(x_T, dtype)
    cond = dict(cond or {})
    if mask is not None:
        mask = expand_like(as_float_tensor(mask, dtype), z)
        z = z * mask

    if not progress:
        return _compiled(denoiser, schedule, "loop", jit_compile)(z, grid, mask, cond)

    from tqdm.auto import tqdm  # CLI-only dependency, imported lazily

    step = _compiled(denoiser, schedule, "step", jit_compile)
    for i in tqdm(range(num_steps), desc="DDIM", unit="step"):
        z = step(z, grid[i], grid[i + 1], mask, cond)
    return z
