"""The one module of :mod:`medfeat.deep` that knows which Keras backend runs.

Keras 3 hides the backend for building, training and predicting, but taking a gradient with respect
to the *input* (what integrated gradients needs) has no backend-neutral API: TensorFlow records a
``GradientTape``, JAX transforms a pure function, PyTorch runs autograd. :func:`gradient` wraps the
three behind one NumPy-in, NumPy-out function; everything else in the package stays backend-free.
"""

from __future__ import annotations

import weakref

import numpy as np

SUPPORTED_BACKENDS = ("tensorflow", "jax", "torch")

# One compiled gradient function per (backend, model); weak keys: a deleted model frees its entry.
_COMPILED = weakref.WeakKeyDictionary()


class UnsupportedBackendError(ValueError):
    """The active Keras backend has no input-gradient implementation here."""


def backend_name():
    """Name of the active Keras backend (``keras.backend.backend()``).

    Returns
    -------
    str
        ``"tensorflow"``, ``"jax"``, ``"torch"`` or another backend Keras knows.

    Examples
    --------
    >>> backend_name() in ("tensorflow", "jax", "torch", "numpy", "openvino")
    True
    """
    import keras

    return keras.backend.backend()


def accumulator_dtype():
    """The widest float dtype the backend computes in: ``"float64"``, except JAX without x64 mode
    (its default), where float64 silently becomes float32 with a warning.

    Streaming metrics accumulate pixel counts in it.

    Examples
    --------
    >>> accumulator_dtype() in ("float32", "float64")
    True
    """
    if backend_name() == "jax":
        import jax

        return "float64" if jax.config.jax_enable_x64 else "float32"
    return "float64"


def _check_targets(target_index, n, n_outputs):
    t = np.asarray(target_index)
    if t.ndim == 0:
        t = np.full(n, t)
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(
            f"target_index must be an int or one int per input ({n}), "
            f"got shape {np.shape(target_index)}"
        )
    integral_floats = t.dtype.kind == "f" and np.all(np.isfinite(t)) and np.all(t == np.round(t))
    if t.dtype.kind not in "iu" and not integral_floats:
        raise ValueError(f"target_index must hold integers, got {target_index!r}")
    t = t.astype(np.int64)
    if n and (t.min() < 0 or t.max() >= n_outputs):
        raise ValueError(
            f"target_index must lie in [0, {n_outputs - 1}] (the model has {n_outputs} outputs), "
            f"got values in [{t.min()}, {t.max()}]"
        )
    return t.astype(np.int32)


def _n_outputs(model):
    shape = model.output_shape
    if isinstance(shape, list) or len(shape) != 2 or shape[-1] is None:
        raise ValueError(
            f"model must have one output of shape (batch, n_outputs), got output shape {shape}"
        )
    return int(shape[-1])


def gradient(model, inputs, target_index, *, return_outputs=False):
    """Gradient of one output unit of ``model`` with respect to its input, per sample.

    For each sample ``k`` this is ``d model(inputs)[k, target_index[k]] / d inputs[k]``. The model
    is called in inference mode (``training=False``), so samples do not interact (batch
    normalisation uses its moving statistics) and the gradient of the summed scores equals the
    per-sample gradients.

    Parameters
    ----------
    model : keras.Model
        A single-input model whose output has shape ``(batch, n_outputs)``.
    inputs : array_like, shape (batch, ...)
        Model inputs; converted to float32.
    target_index : int or array_like of int, shape (batch,)
        The output unit to differentiate: one for all samples or one per sample.
    return_outputs : bool, default False
        Also return the model outputs at ``inputs`` (from the same forward pass).

    Returns
    -------
    grad : numpy.ndarray, float32, shape like ``inputs``
    outputs : numpy.ndarray, float32, shape (batch, n_outputs)
        Only when ``return_outputs`` is True.

    Raises
    ------
    UnsupportedBackendError
        When the Keras backend is not one of ``"tensorflow"``, ``"jax"``, ``"torch"``.
    ValueError
        When the model output is not ``(batch, n_outputs)`` or ``target_index`` is out of range.

    Examples
    --------
    A linear model's input gradient is its weight column:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, use_bias=False)])
    >>> model.layers[0].set_weights([np.array([[1., 4.], [2., 5.], [3., 6.]])])
    >>> gradient(model, np.ones((1, 3)), 1)
    array([[4., 5., 6.]], dtype=float32)
    """
    name = backend_name()
    if name not in SUPPORTED_BACKENDS:
        raise UnsupportedBackendError(
            f"input gradients are implemented for the Keras backends {SUPPORTED_BACKENDS}; "
            f"the active "
            f"backend is {name!r} (set KERAS_BACKEND to one of those before importing keras)"
        )
    x = np.asarray(inputs, dtype=np.float32)
    if x.ndim < 1:
        raise ValueError(f"inputs must have a batch axis, got shape {x.shape}")
    t = _check_targets(target_index, x.shape[0], _n_outputs(model))
    fn = _compiled(model, name)
    g, out = fn(x, t)
    g = np.asarray(g, dtype=np.float32).reshape(x.shape)
    return (g, np.asarray(out, dtype=np.float32)) if return_outputs else g


def _compiled(model, name):
    per_model = _COMPILED.get(model)
    if per_model is None:
        per_model = _COMPILED[model] = {}
    if name not in per_model:
        per_model[name] = {
            "tensorflow": _tf_gradient,
            "jax": _jax_gradient,
            "torch": _torch_gradient,
        }[name](model)
    return per_model[name]


# The compiled functions hold the model only weakly: a strong reference in a WeakKeyDictionary value
# would keep its own key alive for ever.


class _TapeGradient:
    """The TensorFlow gradient as a callable object: ``tf.function`` keys its retracing statistics
    on a plain function's code, which every model would share (a spurious "frequent retracing"
    warning after five models); an object is keyed on itself, one per model."""

    def __init__(self, model):
        self._ref = weakref.ref(model)

    def __call__(self, x, t):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            out = tf.cast(self._ref()(x, training=False), tf.float32)
            score = tf.reduce_sum(tf.gather(out, t, axis=1, batch_dims=1))
        return tape.gradient(score, x), out


def _tf_gradient(model):
    import tensorflow as tf

    # Traced once per input signature; reduce_retracing keeps a varying last batch from recompiling.
    fn = tf.function(_TapeGradient(model), reduce_retracing=True, autograph=False)

    def run(x, t):
        g, out = fn(tf.constant(x), tf.constant(t))
        return g.numpy(), out.numpy()

    return run


def _jax_gradient(model):
    import jax
    import jax.numpy as jnp

    ref = weakref.ref(model)

    # A pure function of the variables' current values and the input: Keras' stateless_call.
    def score(x, t, trainable, non_trainable):
        out, _ = ref().stateless_call(trainable, non_trainable, x, training=False)
        out = out.astype(jnp.float32)
        return jnp.sum(jnp.take_along_axis(out, t[:, None], axis=1)), out

    grad_fn = jax.jit(jax.grad(score, argnums=0, has_aux=True))

    def run(x, t):
        # Values read at call time, so training between calls is seen.
        model = ref()
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        g, out = grad_fn(jnp.asarray(x), jnp.asarray(t), trainable, non_trainable)
        return np.asarray(g), np.asarray(out)

    return run


def _torch_gradient(model):
    import keras
    import torch

    ref = weakref.ref(model)

    def run(x, t):
        xt = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
        tt = torch.as_tensor(t, dtype=torch.int64, device=xt.device)
        out = ref()(xt, training=False).to(torch.float32)
        score = out.gather(1, tt[:, None]).sum()
        (g,) = torch.autograd.grad(score, xt)
        return g.detach().cpu().numpy(), out.detach().cpu().numpy()

    return run
