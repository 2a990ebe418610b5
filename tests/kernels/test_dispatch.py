"""Backend registry: names, availability, MEDFEAT_BACKEND, GPU-array routing."""

import numpy as np
import pytest

from medfeat.kernels import BackendNotImplementedError, BackendUnavailableError, available_backends
from medfeat.kernels import _dispatch


def test_cpu_backends_all_work_here():
    # CI builds the Cython extensions and installs numba: both must be usable, never silently missing.
    assert set(available_backends()) >= {"cython", "numba"}
    assert available_backends() == tuple(b for b in _dispatch.BACKENDS if b in available_backends())


@pytest.mark.parametrize("bad", ["CYTHON", "opencl", "", None, 3])
def test_unknown_backend_names_the_argument(bad):
    with pytest.raises(ValueError, match="backend must be one of"):
        _dispatch.resolve_backend(bad, auto=("numba",))


def test_auto_follows_the_kernel_preference_order():
    assert _dispatch.resolve_backend("auto", auto=("cython", "numba")) == "cython"
    assert _dispatch.resolve_backend("auto", auto=("numba", "cython")) == "numba"


def test_environment_overrides_auto(monkeypatch):
    monkeypatch.setenv("MEDFEAT_BACKEND", "numba")
    assert _dispatch.resolve_backend("auto", auto=("cython", "numba")) == "numba"
    # an explicit backend wins over the environment
    assert _dispatch.resolve_backend("cython", auto=("numba",)) == "cython"
    monkeypatch.setenv("MEDFEAT_BACKEND", "gpu")
    with pytest.raises(ValueError, match="MEDFEAT_BACKEND"):
        _dispatch.resolve_backend("auto", auto=("numba",))


class _FakeDeviceArray:
    __cuda_array_interface__ = {"shape": (4, 4), "typestr": "<f4", "data": (0, False), "version": 3}


def test_gpu_array_with_a_cpu_backend_is_refused(monkeypatch):
    monkeypatch.setattr(_dispatch, "_why_unavailable", lambda b: None)
    with pytest.raises(ValueError, match="lives on the GPU"):
        _dispatch.resolve_backend("numba", auto=("numba",), image=_FakeDeviceArray())
    assert _dispatch.resolve_backend("auto", auto=("numba",), image=_FakeDeviceArray()) == "cuda"


def test_unavailable_backend_says_why(monkeypatch):
    monkeypatch.setattr(_dispatch, "_why_unavailable",
                        lambda b: "no CUDA GPU was found" if b == "cuda" else None)
    with pytest.raises(BackendUnavailableError, match="no CUDA GPU"):
        _dispatch.resolve_backend("cuda", auto=("numba",))
    assert issubclass(BackendUnavailableError, ValueError)


def test_missing_family_implementation_is_a_clear_error():
    with pytest.raises(BackendUnavailableError, match="no implementation of the nosuchfamily"):
        _dispatch.implementation("nosuchfamily", "numba")


def test_missing_kernel_in_a_family_is_a_clear_error():
    with pytest.raises(BackendUnavailableError, match="does not implement nosuchkernel"):
        _dispatch.get_kernel("edges", "nosuchkernel", "numba", auto=("numba",))


def test_every_family_has_one_cpu_implementation_and_a_gpu_one():
    # Same names at each level: kernels/<module>.py -> _kernels/{cython,numba_cpu,numba_cuda}/<family>.
    import medfeat.kernels as K

    for name in K._EXPORTS:
        assert callable(getattr(K, name)), name
    for family, backends in _dispatch.FAMILY_BACKENDS.items():
        assert len([b for b in backends if b != "cuda"]) == 1, family
        assert backends[-1] == "cuda"
        for backend in backends:
            if backend != "cuda":
                assert _dispatch.implementation(family, backend) is not None
        for backend in set(_dispatch.BACKENDS) - set(backends):
            with pytest.raises(BackendNotImplementedError, match=f"backend={backend!r}.*{family}"):
                _dispatch.implementation(family, backend)


def test_removed_backend_error_names_the_available_ones():
    with pytest.raises(BackendNotImplementedError) as info:
        _dispatch.get_kernel("edges", "edge_filter_2d", "cython", auto=("numba",))
    assert "backend='cython'" in str(info.value) and "backend='numba' or backend='cuda'" in str(info.value)
    assert issubclass(BackendNotImplementedError, ValueError)


def test_environment_backend_a_family_lacks_falls_back_to_its_own(monkeypatch):
    monkeypatch.setenv("MEDFEAT_BACKEND", "cython")
    assert _dispatch.resolve_backend("auto", auto=("numba",), family="edges") == "numba"
    assert _dispatch.resolve_backend("auto", auto=("cython",), family="density") == "cython"


def test_cuda_backend_is_refused_cleanly_without_a_gpu():
    import medfeat.kernels as K

    if "cuda" in available_backends():
        pytest.skip("a CUDA device (or the simulator) is available here")
    with pytest.raises(BackendUnavailableError, match="cuda"):
        K.sobel(np.ones((8, 8), np.float32), backend="cuda")


def test_auto_skips_a_backend_missing_the_family(monkeypatch):
    # A Cython extension that failed to build must not break "auto" where another CPU backend has
    # the family: fall back to it.
    real = _dispatch.implementation

    def fake(family, backend):
        if family == "density" and backend == "cython":
            raise BackendUnavailableError("not compiled")
        if family == "density" and backend == "numba":
            return object()  # a stand-in for a second CPU implementation
        return real(family, backend)

    monkeypatch.setattr(_dispatch, "implementation", fake)
    monkeypatch.setitem(_dispatch.FAMILY_BACKENDS, "density", ("cython", "numba", "cuda"))
    assert _dispatch.resolve_backend("auto", auto=("cython", "numba"), family="density") == "numba"
    assert _dispatch.resolve_backend("auto", auto=("cython", "numba"), family="intensity") == "cython"
    with pytest.raises(BackendUnavailableError):
        _dispatch.get_kernel("density", "bin_counts", "cython", auto=("cython",))


def test_cpu_is_each_familys_cpu_backend(monkeypatch):
    import medfeat.kernels as K

    img = np.arange(64, dtype=np.float32).reshape(8, 8)
    for family, backends in _dispatch.FAMILY_BACKENDS.items():
        assert _dispatch.resolve_backend("cpu", auto=backends[:1], family=family) == backends[0]
    # "cpu" ignores $MEDFEAT_BACKEND and refuses GPU input
    monkeypatch.setenv("MEDFEAT_BACKEND", "cuda")
    assert _dispatch.resolve_backend("cpu", auto=("numba",), family="edges") == "numba"
    monkeypatch.setattr(_dispatch, "_why_unavailable", lambda b: None)
    with pytest.raises(ValueError, match="lives on the GPU"):
        _dispatch.resolve_backend("cpu", auto=("numba",), image=_FakeDeviceArray())
    monkeypatch.setenv("MEDFEAT_BACKEND", "cpu")
    assert _dispatch.resolve_backend("auto", auto=("cython",), family="density") == "cython"
    with pytest.raises(ValueError, match="lives on the GPU"):
        _dispatch.resolve_backend("auto", auto=("numba",), image=_FakeDeviceArray())
    monkeypatch.delenv("MEDFEAT_BACKEND")
    np.testing.assert_array_equal(K.sobel(img, backend="cpu"), K.sobel(img, backend="numba"))
    assert K.threshold_otsu(img, backend="cpu") == K.threshold_otsu(img, backend="cython")


def test_gpu_module_missing_its_cython_host_steps_says_so(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake(name, *args):
        if name == "medfeat._kernels.numba_cuda.density":
            raise ModuleNotFoundError("no module", name="medfeat._kernels.cython._density_cy")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(BackendUnavailableError, match="_density_cy.*pip install"):
        _dispatch.implementation("density", "cuda")
