"""Backend registry: which implementations exist, which work here, and which one a call gets.

Implementations live in ``medfeat._kernels``, one module per (family, backend), with the same function
names at each level:

- ``cython``: ``medfeat._kernels.cython._<family>_cy`` (compiled by setup.py)
- ``numba``:  ``medfeat._kernels.numba_cpu.<family>``
- ``cuda``:   ``medfeat._kernels.numba_cuda.<family>``

Each family has one CPU implementation, the faster of the two that once existed as measured by
``benchmarks/compare.py`` (``benchmarks/results/architecture-2026-12-03.md``), and a GPU one:
:data:`FAMILY_BACKENDS`. Asking a family for a backend it does not have raises
:class:`BackendNotImplementedError`, naming the ones it has.

``backend="auto"`` takes ``$MEDFEAT_BACKEND`` if it is set and the family has that backend,
``"cuda"`` for input that already lives on the GPU, and otherwise the family's CPU backend.
"""

from __future__ import annotations

import functools
import importlib
import os
import pkgutil

BACKENDS = ("cython", "numba", "cuda")
#: what ``backend=`` accepts: the backends, "auto", and "cpu" (the family's CPU backend, whichever)
_CHOICES = ("auto", "cpu", *BACKENDS)
_MODULE_PATTERN = {
    "cython": "medfeat._kernels.cython._{family}_cy",
    "numba": "medfeat._kernels.numba_cpu.{family}",
    "cuda": "medfeat._kernels.numba_cuda.{family}",
}


#: The backends implementing each kernel family (``medfeat._kernels.<backend>.<family>``).
FAMILY_BACKENDS = {
    "edges": ("numba", "cuda"),
    "morphology": ("numba", "cuda"),
    "density": ("cython", "cuda"),
    "intensity": ("cython", "cuda"),
}


class BackendUnavailableError(ValueError):
    """A known backend that cannot run here (not compiled, no GPU, or not implemented for a kernel)."""


class BackendNotImplementedError(BackendUnavailableError):
    """A known backend that has no implementation of a kernel family (the message names the ones
    that have)."""


def _check_family_backend(family, backend):
    have = FAMILY_BACKENDS.get(family)
    if have is not None and backend not in have:
        raise BackendNotImplementedError(
            f"backend={backend!r} does not implement the {family} kernels; they run on "
            + " or ".join(f"backend={b!r}" for b in have)
            + " (one CPU implementation per kernel family)"
        )


@functools.lru_cache(maxsize=None)
def _why_unavailable(backend):
    """None if ``backend`` works on this machine, otherwise the reason as a sentence."""
    if backend == "cython":
        import medfeat._kernels.cython as pkg

        compiled = [m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name.endswith("_cy")]
        for name in compiled:
            try:
                importlib.import_module(f"{pkg.__name__}.{name}")
                return None
            except ImportError:
                continue
        return ("the Cython extensions are not compiled; reinstall with `pip install -e .` "
                "(needs a C compiler)")
    if backend == "numba":
        try:
            import numba  # noqa: F401
        except ImportError:
            return "numba is not installed (`pip install numba`)"
        return None
    if backend == "cuda":
        try:
            from numba import cuda
        except ImportError:
            return "numba is not installed (`pip install numba`)"
        try:
            if cuda.is_available():
                return None
        except Exception as exc:  # driver present but broken
            return f"the CUDA driver failed: {exc}"
        return "no CUDA GPU was found (set NUMBA_ENABLE_CUDASIM=1 to use the simulator)"
    return f"unknown backend {backend!r}"


def backend_status():
    """Whether each backend works on this machine, and if not, why.

    Returns
    -------
    dict of str to str or None
        For each of ``("cython", "numba", "cuda")``: None if it works here, otherwise the reason
        as a sentence (what is missing and how to get it).

    Examples
    --------
    >>> from medfeat.kernels import backend_status
    >>> backend_status()["numba"] is None
    True
    """
    return {b: _why_unavailable(b) for b in BACKENDS}


def available_backends():
    """The kernel backends that work on this machine.

    The CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) counts as a working ``"cuda"`` backend.

    Returns
    -------
    tuple of str
        A subset of ``("cython", "numba", "cuda")``, in that order.

    Examples
    --------
    >>> from medfeat.kernels import available_backends
    >>> "numba" in available_backends()
    True
    """
    return tuple(b for b in BACKENDS if _why_unavailable(b) is None)


def is_device_array(x):
    """True for GPU arrays: anything exposing ``__cuda_array_interface__`` (CuPy, PyTorch, numba),
    and numba's device arrays, whose simulated twins (``NUMBA_ENABLE_CUDASIM=1``) only carry the
    ``__cuda_ndarray__`` flag."""
    return getattr(x, "__cuda_ndarray__", False) is True or hasattr(x, "__cuda_array_interface__")


def wants_cuda(backend, image=None):
    """True when ``resolve_backend(backend, ...)`` would choose ``"cuda"`` for ``image``.

    The public kernels ask this before validating, because GPU input is checked from its metadata
    (:func:`medfeat.kernels._validate.check_device_image`) rather than converted to NumPy.
    """
    if backend == "cuda":
        return True
    if backend != "auto":
        return False
    env = os.environ.get("MEDFEAT_BACKEND", "").strip()
    if env and env != "auto":
        return env == "cuda"
    return image is not None and is_device_array(image)


def _has_family(backend, family):
    if family is None:
        return True
    if backend not in FAMILY_BACKENDS.get(family, BACKENDS):
        return False
    try:
        implementation(family, backend)
    except BackendUnavailableError:
        return False
    return True


def resolve_backend(backend, *, auto, image=None, family=None):
    """Return the concrete backend name a call should use.

    Parameters
    ----------
    backend : str
        ``"auto"``, ``"cpu"``, ``"cython"``, ``"numba"`` or ``"cuda"``. ``"cpu"`` is the first
        working backend of ``auto`` (the family's CPU implementation), whatever
        ``$MEDFEAT_BACKEND`` says; a GPU array is refused with it.
    auto : tuple of str
        The kernel's CPU preference order for ``"auto"``, fastest first.
    image : object, optional
        The input; a GPU array makes ``"auto"`` choose ``"cuda"``.
    family : str, optional
        The kernel family; ``"auto"`` then skips a backend that works here in general but lacks this
        family (not in :data:`FAMILY_BACKENDS`, or its Cython extension failed to build), and so
        does ``$MEDFEAT_BACKEND``.

    Raises
    ------
    ValueError
        For an unknown backend name.
    BackendNotImplementedError
        When ``family`` has no implementation for the backend asked for.
    BackendUnavailableError
        When the chosen backend does not work here.
    """
    if not isinstance(backend, str) or backend not in _CHOICES:
        raise ValueError(f"backend must be one of {', '.join(map(repr, _CHOICES))}; got {backend!r}")
    on_gpu = image is not None and is_device_array(image)
    if backend == "auto":
        env = os.environ.get("MEDFEAT_BACKEND", "").strip() or "auto"
        if env not in _CHOICES:
            raise ValueError(
                f"$MEDFEAT_BACKEND must be one of {', '.join(map(repr, _CHOICES))}; got {env!r}"
            )
        if env == "cpu" or (env in BACKENDS and family is not None
                            and env not in FAMILY_BACKENDS.get(family, ())):
            backend = "cpu"  # a CPU backend this family lacks: the family's own
        elif env != "auto":
            backend = env
        elif on_gpu:
            backend = "cuda"
    if backend in ("auto", "cpu"):
        if on_gpu:
            raise ValueError("image lives on the GPU but backend='cpu' runs on the CPU; pass a "
                             "NumPy array or use backend='cuda'")
        for candidate in auto:
            if _why_unavailable(candidate) is None and _has_family(candidate, family):
                return candidate
        raise BackendUnavailableError(
            "no CPU backend works here: "
            + "; ".join(f"{b}: {_why_unavailable(b)}" for b in auto)
        )
    if family is not None:
        _check_family_backend(family, backend)
    why = _why_unavailable(backend)
    if why is not None:
        raise BackendUnavailableError(f"backend={backend!r} is not available: {why}")
    if on_gpu and backend != "cuda":
        raise ValueError(
            f"image lives on the GPU but backend={backend!r} runs on the CPU; pass a NumPy array "
            "or use backend='cuda'"
        )
    return backend


def implementation(family, backend):
    """The module holding ``family``'s kernels for a concrete ``backend``.

    Raises
    ------
    BackendNotImplementedError
        When that backend has no implementation of the family.
    """
    _check_family_backend(family, backend)
    modname = _MODULE_PATTERN[backend].format(family=family)
    try:
        return importlib.import_module(modname)
    except ModuleNotFoundError as exc:
        if exc.name != modname and (exc.name or "").startswith("medfeat._kernels.cython."):
            # the GPU density module runs its host-side steps in the Cython body
            raise BackendUnavailableError(
                f"backend={backend!r} needs the compiled extension {exc.name} for the {family} "
                "kernels; reinstall with `pip install -e .` (needs a C compiler)"
            ) from None
        if exc.name != modname:
            raise
        raise BackendNotImplementedError(
            f"backend={backend!r} has no implementation of the {family} kernels"
            + (" (the Cython extension is not compiled)" if backend == "cython" else "")
        ) from None


def device_helpers():
    """The GPU backend's array plumbing (``medfeat._kernels.numba_cuda._common``: ``to_device``,
    ``as_device``, ``flat``, ...), for the public kernels' CUDA paths (importable without a GPU:
    the kernels that need one resolve ``backend`` first)."""
    return importlib.import_module("medfeat._kernels.numba_cuda._common")


def cuda_kernels(family):
    """The GPU module of ``family`` (``implementation(family, "cuda")``), for helpers a public
    CUDA path borrows from another family (a device reduction, a 0/1 mask)."""
    return implementation(family, "cuda")


def get_kernel(family, name, backend, *, auto, image=None):
    """Resolve ``backend`` and return ``(backend, function)`` for kernel ``name`` of ``family``.

    Examples
    --------
    >>> from medfeat.kernels._dispatch import resolve_backend
    >>> resolve_backend("numba", auto=("cython", "numba"))
    'numba'
    """
    chosen = resolve_backend(backend, auto=auto, image=image, family=family)
    module = implementation(family, chosen)
    try:
        return chosen, getattr(module, name)
    except AttributeError:
        raise BackendUnavailableError(
            f"backend={chosen!r} does not implement {name} yet"
        ) from None
