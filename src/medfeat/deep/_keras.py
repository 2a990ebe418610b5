"""Importing Keras with a helpful error, and seeding it.

Everything in :mod:`medfeat.deep` reaches Keras through :func:`import_keras`, so a missing
``deep`` extra fails on first use with one clear message instead of an ``ImportError`` deep in a
model builder.
"""

import os

_INSTALL_HINT = 'pip install "medfeat[deep]"'


def import_keras():
    """Import and return ``keras`` (Keras 3), or raise ``ImportError`` naming the ``deep`` extra.

    TensorFlow's C++ start-up chatter is reduced (``TF_CPP_MIN_LOG_LEVEL=2``) unless the user
    has already set that variable.

    Returns
    -------
    module
        The ``keras`` module.

    Examples
    --------
    >>> keras = import_keras()
    >>> int(keras.__version__.split(".")[0]) >= 3
    True
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import keras
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"medfeat.deep needs Keras 3 and a backend (TensorFlow by default): {_INSTALL_HINT}"
        ) from exc
    major = int(str(keras.__version__).split(".")[0])
    if major < 3:  # pragma: no cover - depends on the environment
        raise ImportError(f"medfeat.deep needs Keras >= 3, found {keras.__version__}: "
                          f"{_INSTALL_HINT}")
    return keras


def backend_name():
    """The Keras backend in use: ``"tensorflow"``, ``"jax"`` or ``"torch"``.

    Examples
    --------
    >>> backend_name() in ("tensorflow", "jax", "torch")
    True
    """
    return import_keras().backend.backend()


def set_seed(seed, *, deterministic=True):
    """Seed Python, NumPy and the Keras backend; on TensorFlow also turn on op determinism.

    Parameters
    ----------
    seed : int
        Non-negative integer.
    deterministic : bool, optional
        On TensorFlow without a GPU, call ``tf.config.experimental.enable_op_determinism()`` (a
        process-wide, one-way switch) so that two runs with the same seed give the same weights.

    Examples
    --------
    >>> set_seed(0)
    """
    seed = check_seed(seed)
    keras = import_keras()
    keras.utils.set_random_seed(seed)
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # Only where TensorFlow sees no GPU: a few GPU kernels have no deterministic version and
        # raise under this switch, and the promise is determinism on the CPU.
        if not tf.config.list_physical_devices("GPU"):
            tf.config.experimental.enable_op_determinism()


def check_seed(seed, name="seed"):
    """``seed`` as a Python int, or ``ValueError`` naming the argument."""
    import numbers

    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {seed!r}")
    return int(seed)
