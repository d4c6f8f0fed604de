"""Deterministic DDIM sampler (FPCD eq. 4) over a v-predicting denoiser.

A *denoiser* is any callable ``denoiser(z, t, **extra_args) -> v_hat`` with ``z`` of shape ``[B, ...]``,
``t`` of shape ``[B]`` (float32 diffusion time in ``[0, 1]``) and ``v_hat`` of the shape of ``z``. The
sampler knows nothing about networks: callers wrap a Keras model and its conditions, either in a
closure or by passing the conditions as ``extra_args`` (tensors, forwarded as keyword arguments).

The step loop runs inside a ``tf.function``. Compiled functions are cached per denoiser object (per
instance and method for bound methods; weakly: the cache does not keep the denoiser alive), so repeated
calls with the *same* callable do not retrace; new batch sizes and step counts cost at most one relaxed
retrace (``reduce_retracing``), because the time grid is a tensor argument. Tracing a network takes
0.2-5 s on CPU, so for generation in many batches prefer one stable callable plus ``extra_args`` over a
fresh closure per batch (which retraces every time and makes TensorFlow warn about retracing).
Consequence of tracing: Python state the denoiser reads (other than its arguments) is frozen at trace
time; conditions that change between calls must arrive through ``extra_args`` or a fresh closure.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Mapping

import tensorflow as tf

from gsgm.diffusion.parameterization import eps_from_v, expand_like, x_from_v
from gsgm.diffusion.schedule import as_float_tensor, cosine_alpha_sigma, time_grid

Denoiser = Callable[..., tf.Tensor]


def ddim_step(z_t, v_hat, t, s) -> tf.Tensor:
    """One deterministic DDIM step from time ``t`` to time ``s < t`` (FPCD eq. 4).

    Eq. (4) reads ``z_s = alpha_s x_hat + sigma_s (z_t - alpha_t x_hat) / sigma_t``. The fraction is the
    noise estimate ``eps_hat``; we take it from the velocity as ``eps_hat = sigma_t z_t + alpha_t v_hat``
    (with ``x_hat = alpha_t z_t - sigma_t v_hat``), which is algebraically identical for a VP schedule but
    never divides, so the step is finite on the whole closed interval: ``t = 1`` (``alpha_t = 0``) is a
    valid start and ``s = 0`` (``alpha_s = 1``, ``sigma_s = 0`` exactly) returns ``x_hat`` bit for bit.

    Args:
        z_t: latent ``[B, ...]``.
        v_hat: predicted velocity at ``(z_t, t)``, shape of ``z_t`` (cast to its dtype).
        t: current time, scalar or ``[B]``.
        s: target time, scalar or ``[B]``.

    Returns:
        ``z_s`` with the shape and dtype of ``z_t``.
    """
    z_t = as_float_tensor(z_t)
    v_hat = as_float_tensor(v_hat, z_t.dtype)
    alpha_t, sigma_t = cosine_alpha_sigma(as_float_tensor(t, z_t.dtype))
    alpha_s, sigma_s = cosine_alpha_sigma(as_float_tensor(s, z_t.dtype))
    x_hat = x_from_v(z_t, v_hat, alpha_t, sigma_t)
    eps_hat = eps_from_v(z_t, v_hat, alpha_t, sigma_t)
    return expand_like(alpha_s, z_t) * x_hat + expand_like(sigma_s, z_t) * eps_hat


def _call_denoiser(denoiser: Denoiser, z: tf.Tensor, t: tf.Tensor, extra_args) -> tf.Tensor:
    """Evaluate the denoiser at scalar time ``t`` for the whole batch and check the output shape."""
    t_batch = tf.fill(tf.shape(z)[:1], t)
    v_hat = denoiser(z, t_batch, **extra_args)
    v_hat = tf.convert_to_tensor(v_hat)
    if not v_hat.shape.is_compatible_with(z.shape):
        raise ValueError(f"denoiser returned shape {v_hat.shape}, expected the shape of z {z.shape}")
    return tf.cast(v_hat, z.dtype)


def _masked(z: tf.Tensor, mask) -> tf.Tensor:
    return z if mask is None else z * mask


def _make_loop(get_denoiser: Callable[[], Denoiser]):
    """The whole sampling loop, as a Python function to be wrapped in ``tf.function``."""

    def loop(z, grid, mask, extra_args):
        denoiser = get_denoiser()
        num_steps = tf.shape(grid)[0] - 1

        def body(i, z):
            t, s = grid[i], grid[i + 1]
            v_hat = _call_denoiser(denoiser, z, t, extra_args)
            z_next = _masked(ddim_step(z, v_hat, t, s), mask)
            return i + 1, tf.ensure_shape(z_next, z.shape)

        # parallel_iterations=1: steps are sequential anyway; avoids prefetching the next iteration.
        _, z = tf.while_loop(lambda i, _: i < num_steps, body, (tf.constant(0), z), parallel_iterations=1)
        return z

    return loop


def _make_step(get_denoiser: Callable[[], Denoiser]):
    """A single step, as a Python function to be wrapped in ``tf.function`` (progress-bar mode)."""

    def step(z, t, s, mask, extra_args):
        v_hat = _call_denoiser(get_denoiser(), z, t, extra_args)
        return _masked(ddim_step(z, v_hat, t, s), mask)

    return step


# owner -> {(method function or None, kind, jit_compile): tf.function}. The owner is the denoiser itself,
# or for a bound method (``obj.denoise``, a new object at every attribute access) the instance, so that
# passing ``obj.denoise`` twice reuses the compiled function. Weak keys: the cache never keeps a model alive.
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled(denoiser: Denoiser, kind: str, jit_compile: bool):
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

    key = (method, kind, bool(jit_compile))
    if key not in per_owner:
        make = _make_loop if kind == "loop" else _make_step
        per_owner[key] = tf.function(make(get_denoiser), jit_compile=bool(jit_compile), reduce_retracing=True)
    return per_owner[key]


def ddim_sample(
    denoiser: Denoiser,
    noise,
    num_steps: int,
    mask=None,
    progress: bool = False,
    jit_compile: bool = False,
    *,
    extra_args: Mapping[str, tf.Tensor] | None = None,
    dtype=tf.float32,
) -> tf.Tensor:
    """Generate samples by integrating the probability-flow ODE from ``t = 1`` to ``t = 0`` with DDIM.

    Uses the uniform grid :func:`~gsgm.diffusion.schedule.time_grid` and makes exactly ``num_steps``
    denoiser evaluations, at ``t = 1, (N-1)/N, ..., 1/N``. The last step lands on ``t = 0`` where
    ``sigma = 0``, so the result is the last data estimate ``x_hat`` itself.

    Args:
        denoiser: ``denoiser(z [B, ...], t [B], **extra_args) -> v_hat [B, ...]``.
        noise: standard normal starting point ``z_1``, ``[B, ...]`` (tensor or numpy).
        num_steps: number of DDIM steps (512 for the FPCD baseline, 8 or 1 after distillation).
        mask: optional ``[B, P]`` / ``[B, P, 1]`` mask (1 = real particle). The noise and every
            intermediate ``z`` are multiplied by it, so padded entries are exactly 0 in the output
            (masked noise plus zero-padding, FPCD section III).
        progress: show a tqdm bar. Steps then run one by one from Python (each step compiled), so the
            bar advances; otherwise the whole loop is one compiled ``tf.while_loop``.
        jit_compile: compile with XLA. Off by default: on CPU (2 cores, TF 2.21) it gained at most ~8 %
            per step for stand-in networks (MLP 7.7 vs 8.4 ms/step, 3-layer attention 30.8 vs 31.9 ms/step
            at batch 256 x 30 x 3; ``benchmarks/bench_ddim_overhead.py``), within the noise, while XLA
            recompiles for every new batch size and step count and does not support every op. Worth
            measuring on GPU.
        extra_args: tensors forwarded to the denoiser as keyword arguments (e.g. conditions); they are
            inputs of the compiled function, so new values do not retrace.
        dtype: floating dtype of the computation (``noise`` and ``mask`` are cast to it; ``t`` too).

    Returns:
        ``x_0`` as a tf tensor with the shape of ``noise``; call ``.numpy()`` for an array.
    """
    grid = time_grid(num_steps, dtype)  # validates num_steps
    z = as_float_tensor(noise, dtype)
    extra_args = dict(extra_args or {})
    if mask is not None:
        mask = expand_like(as_float_tensor(mask, dtype), z)
        z = z * mask

    if not progress:
        return _compiled(denoiser, "loop", jit_compile)(z, grid, mask, extra_args)

    from tqdm.auto import tqdm  # CLI-only dependency, imported lazily

    step = _compiled(denoiser, "step", jit_compile)
    for i in tqdm(range(num_steps), desc="DDIM", unit="step"):
        z = step(z, grid[i], grid[i + 1], mask, extra_args)
    return z
