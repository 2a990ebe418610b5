"""The public kernels on dask arrays: lazy results identical to the in-memory call for any chunking
(Hypothesis draws chunk sizes that do and do not divide the shape), 2-D and 3-D."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medfeat import kernels as K

from ..conftest import load_real, load_volume, local_cluster, to_dtype

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

FAST = settings(max_examples=6, deadline=None)


@pytest.fixture(autouse=True)
def _synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def _image_2d(dtype=np.uint8, shape=(40, 46)):
    ct = load_real("ct_small")  # 128x128 CT slice
    return to_dtype(ct[30:30 + shape[0], 40:40 + shape[1]], dtype)


def _volume(dtype=np.int16):
    return to_dtype(load_volume()[:7, 10:30, 12:34], dtype)


@st.composite
def chunkings(draw, shape):
    """Chunk lengths per axis: a few random cuts (irregular chunks), or one regular size."""
    out = []
    for n in shape:
        if draw(st.booleans()):
            size = draw(st.integers(1, n))
            out.append(size)
        else:
            cuts = draw(st.lists(st.integers(1, n - 1), max_size=3, unique=True))
            bounds = [0, *sorted(cuts), n]
            out.append(tuple(b - a for a, b in zip(bounds, bounds[1:])))
    return tuple(out)


def _lazy(image, chunks):
    return da.from_array(np.asarray(image), chunks=chunks)


# ----------------------------------------------------------------------------------------- edges


@FAST
@given(data=st.data(), ndim=st.sampled_from([2, 3]),
       mode=st.sampled_from(["reflect", "constant", "nearest", "mirror", "wrap"]),
       name=st.sampled_from(["sobel", "prewitt"]), masked=st.booleans())
def test_edge_filters_match_in_memory(data, ndim, mode, name, masked):
    img = _image_2d(np.float32) if ndim == 2 else _volume(np.float32)
    mask = img > np.median(img) if masked else None
    chunks = data.draw(chunkings(img.shape))
    fn = getattr(K, name)
    out = fn(_lazy(img, chunks), mask=mask, mode=mode, cval=0.25)
    assert isinstance(out, da.Array) and out.dtype == np.float32
    np.testing.assert_allclose(out.compute(), fn(img, mask=mask, mode=mode, cval=0.25),
                               rtol=1e-6, atol=1e-7)


def test_edge_filter_axis_and_integer_dtype():
    img = _image_2d(np.uint16)
    lazy = _lazy(img, (13, 17))
    for axis in (0, 1, None):
        out = K.sobel(lazy, axis=axis, mode=["wrap", "reflect"])
        assert out.dtype == np.float64
        np.testing.assert_allclose(out.compute(), K.sobel(img, axis=axis, mode=["wrap", "reflect"]),
                                   rtol=1e-6, atol=1e-12)


# ------------------------------------------------------------------------------------ morphology

GREY = ["erosion", "dilation", "opening", "closing"]
BINARY = ["binary_erosion", "binary_dilation", "binary_opening", "binary_closing"]


def _footprint(kind, ndim):
    if kind == "even":  # even sides: padded at the front (grey) or the end (binary)
        return np.ones((4, 2) if ndim == 2 else (2, 4, 3), bool)
    if kind == "sequence":
        return [(np.ones((3,) * ndim, bool), 2), (np.ones((1,) * (ndim - 1) + (3,), bool), 1)]
    if kind == "asymmetric":
        fp = np.zeros((3,) * ndim, bool)
        fp[(0,) * ndim] = fp[(1,) * ndim] = True
        return fp
    return K.disk(2) if ndim == 2 else K.ball(1)


@FAST
@given(data=st.data(), ndim=st.sampled_from([2, 3]), name=st.sampled_from(GREY),
       mode=st.sampled_from(["reflect", "constant", "nearest", "mirror", "wrap", "max", "ignore"]),
       kind=st.sampled_from(["disk", "even", "sequence", "asymmetric"]),
       dtype=st.sampled_from([np.uint8, np.int16, np.float32]))
def test_grey_morphology_is_bit_identical(data, ndim, name, mode, kind, dtype):
    img = _image_2d(dtype) if ndim == 2 else _volume(dtype)
    fp = _footprint(kind, ndim)
    chunks = data.draw(chunkings(img.shape))
    fn = getattr(K, name)
    out = fn(_lazy(img, chunks), fp, mode=mode, cval=7)
    assert isinstance(out, da.Array)
    np.testing.assert_array_equal(out.compute(), fn(img, fp, mode=mode, cval=7))


@FAST
@given(data=st.data(), ndim=st.sampled_from([2, 3]), name=st.sampled_from(BINARY),
       mode=st.sampled_from(["ignore", "max", "min"]),
       kind=st.sampled_from(["disk", "even", "sequence", "asymmetric"]))
def test_binary_morphology_is_bit_identical(data, ndim, name, mode, kind):
    img = _image_2d() if ndim == 2 else _volume(np.uint8)
    binary = img > np.median(img)
    fp = _footprint(kind, ndim)
    chunks = data.draw(chunkings(img.shape))
    fn = getattr(K, name)
    out = fn(_lazy(binary, chunks), fp, mode=mode)
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out.compute(), fn(binary, fp, mode=mode))


def test_footprint_larger_than_a_chunk_and_the_image():
    img = _image_2d(np.uint8, shape=(12, 15))
    fp = K.disk(9)  # 19x19: wider than the image, so the halo covers whole axes
    out = K.opening(_lazy(img, (5, 4)), fp, mode="reflect")
    np.testing.assert_array_equal(out.compute(), K.opening(img, fp, mode="reflect"))


def test_morphology_batch_stack():
    stack = np.stack([_image_2d(), _image_2d()[::-1, ::-1]])
    out = K.erosion(_lazy(stack, (1, 11, 13)), K.disk(2), batch=True)
    np.testing.assert_array_equal(out.compute(), K.erosion(stack, K.disk(2), batch=True))


# -------------------------------------------------------------------------- density and intensity


@FAST
@given(data=st.data(), ndim=st.sampled_from([2, 3]),
       dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.float32, np.float64]))
def test_histograms_and_thresholds_are_identical(data, ndim, dtype):
    img = _image_2d(dtype) if ndim == 2 else _volume(dtype)
    lazy = _lazy(img, data.draw(chunkings(img.shape)))
    for bins, rng in ((37, None), (10, (0.1, 0.6))):
        counts, edges = K.histogram(lazy, bins, rng)
        ref_counts, ref_edges = K.histogram(img, bins, rng)
        np.testing.assert_array_equal(counts, ref_counts)
        np.testing.assert_array_equal(edges, ref_edges)
        assert edges.dtype == ref_edges.dtype
    for fn in (K.threshold_otsu, K.threshold_maxent):
        t, ref = fn(lazy, nbins=64), fn(img, nbins=64)
        assert t == ref and np.asarray(t).dtype == np.asarray(ref).dtype


def test_threshold_of_a_constant_image_and_hist_argument():
    img = np.full((9, 10), 42, np.uint16)
    assert K.threshold_otsu(_lazy(img, 4)) == 42
    assert K.threshold_otsu(_lazy(img, 4), hist=np.array([1, 5])) == 42


@FAST
@given(data=st.data(), dtype=st.sampled_from([np.uint8, np.int16, np.float32, np.float64]),
       bandwidth=st.sampled_from(["scott", "silverman", 0.5]))
def test_density_matches_in_memory(data, dtype, bandwidth):
    img = _volume(dtype)
    lazy = _lazy(img, data.draw(chunkings(img.shape)))
    grid, pdf = K.density(lazy, bandwidth=bandwidth, grid_size=128)
    ref_grid, ref_pdf = K.density(img, bandwidth=bandwidth, grid_size=128)
    np.testing.assert_allclose(grid, ref_grid, rtol=1e-9)
    np.testing.assert_allclose(pdf, ref_pdf, rtol=1e-6, atol=1e-9 * ref_pdf.max())


@FAST
@given(data=st.data(), ndim=st.sampled_from([2, 3]),
       dtype=st.sampled_from([np.uint16, np.int16, np.float32, np.float64]),
       method=st.sampled_from(["zscore", "minmax", "percentile", "window"]),
       masked=st.booleans())
def test_normalize_matches_in_memory(data, ndim, dtype, method, masked):
    img = _image_2d(dtype) if ndim == 2 else _volume(dtype)
    mask = img > np.percentile(img, 30) if masked else None
    kw = dict(center=float(np.median(img)), width=float(np.ptp(img)) / 2 or 1.0) \
        if method == "window" else dict(lower=2.5, upper=97)
    out = K.normalize(_lazy(img, data.draw(chunkings(img.shape))), method, mask=mask, **kw)
    assert isinstance(out, da.Array) and out.dtype == np.float32
    ref = K.normalize(img, method, mask=mask, **kw)
    if method == "zscore":
        np.testing.assert_allclose(out.compute(), ref, rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(out.compute(), ref)


def test_float_percentile_selection_with_many_values():
    # more values than one gather holds: the exact selection refines its interval over passes
    rng = np.random.default_rng(0)
    img = rng.normal(size=(300, 300)).astype(np.float32)
    img[:50] = 0.5  # a run of ties
    out = K.normalize(_lazy(img, (128, 97)), "percentile", lower=1, upper=20)
    np.testing.assert_array_equal(out.compute(), K.normalize(img, "percentile", lower=1, upper=20))


# ------------------------------------------------------------------------------------------ canny


@settings(max_examples=6, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.uint8, np.float32, np.float64]),
       sigma=st.sampled_from([0.0, 1.0, 1.7]),
       mode=st.sampled_from(["constant", "reflect", "wrap", "nearest"]),
       masked=st.booleans(), quantiles=st.booleans())
def test_canny_is_bit_identical(data, dtype, sigma, mode, masked, quantiles):
    img = _image_2d(dtype)
    mask = img > np.percentile(img, 20) if masked else None
    kw = dict(low_threshold=0.6, high_threshold=0.9, use_quantiles=True) if quantiles else {}
    lazy = _lazy(img, data.draw(chunkings(img.shape)))
    out = K.canny(lazy, sigma=sigma, mask=mask, mode=mode, **kw)
    assert isinstance(out, da.Array) and out.dtype == np.bool_
    np.testing.assert_array_equal(out.compute(), K.canny(img, sigma=sigma, mask=mask, mode=mode,
                                                         **kw))


class _Reader:
    """An array-like read slice by slice (as a memory map, a Zarr or HDF5 dataset is): what
    ``dask.array.from_array`` needs, and a log of the boxes read."""

    def __init__(self, array):
        self.array = np.asarray(array)
        self.shape, self.dtype, self.ndim = self.array.shape, self.array.dtype, self.array.ndim
        self.reads = []

    def __getitem__(self, index):
        self.reads.append(index)
        return self.array[index].copy()


def _read_lazy(image, chunks, pad=0):
    """``image`` as a dask array that slices a :class:`_Reader` of a larger array (``pad``
    pixels around it), so that every chunk task is a getter on the reader at a shift."""
    big = np.pad(np.asarray(image), pad, mode="reflect") if pad else np.asarray(image)
    src = da.from_array(_Reader(big), chunks=chunks, asarray=False)
    return src[pad:pad + image.shape[0], pad:pad + image.shape[1]] if pad else src


@settings(max_examples=8, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.uint8, np.float32, np.float64]),
       sigma=st.sampled_from([0.0, 1.0, 1.7]),
       mode=st.sampled_from(["constant", "reflect", "mirror", "nearest", "wrap"]),
       masked=st.sampled_from(["none", "numpy", "read", "computed"]), quantiles=st.booleans(),
       pad=st.sampled_from([0, 3]))
def test_canny_read_from_an_array_like_is_bit_identical(data, dtype, sigma, mode, masked,
                                                        quantiles, pad):
    """Chunks read straight from an array-like (each task reads its halo'd region in one slice)
    give the in-memory edges for any chunking, slice of the array-like, mode and mask (given as
    NumPy, as another array-like, or computed by tasks and so cut from its chunks)."""
    from medfeat.kernels import _dask as D

    img = _image_2d(dtype)
    mask = img > np.percentile(img, 20) if masked != "none" else None
    chunks = data.draw(chunkings(img.shape))
    # chunk sizes of the larger array: the slice's chunks are then irregular
    sizes = tuple(data.draw(st.integers(1, n), label="size") for n in img.shape)
    lazy = _read_lazy(img, sizes if pad else chunks, pad)
    assert D._source_reads(lazy) is not None
    lazy_mask = {"none": None, "numpy": mask,
                 "read": None if mask is None else _read_lazy(mask, chunks),
                 "computed": None if mask is None else da.from_array(mask, chunks) | False}
    kw = {"low_threshold": 0.6, "high_threshold": 0.9, "use_quantiles": True} if quantiles else {}
    out = K.canny(lazy, sigma=sigma, mask=lazy_mask[masked], mode=mode, **kw)
    np.testing.assert_array_equal(out.compute(), K.canny(img, sigma=sigma, mask=mask, mode=mode,
                                                         **kw))


def test_canny_reads_each_region_once_from_an_array_like():
    """From an array-like, one read per chunk, of the chunk grown by the halo (Gaussian radius
    plus two) and clipped to the image; no chunk is read whole on its own."""
    img = _image_2d(np.float32)
    lazy = _read_lazy(img, (24, 27), pad=4)        # 2 x 2 chunks, a slice of a larger array
    assert lazy.chunks == ((20, 20), (23, 23))
    reader = lazy.dask[next(k for k in lazy.dask if "original" in str(k))]
    reader = getattr(reader, "value", reader)
    reader.reads.clear()                           # from_array's own look at the dtype
    out = K.canny(lazy, sigma=1.0)                 # halo 4 + 2
    assert sorted(reader.reads, key=str) == sorted(
        [(slice(4 + r0, 4 + r1), slice(4 + c0, 4 + c1))
         for r0, r1 in ((0, 26), (14, 40)) for c0, c1 in ((0, 29), (17, 46))], key=str)
    np.testing.assert_array_equal(out.compute(), K.canny(img, sigma=1.0))
    assert len(reader.reads) == 4                  # the edge map reads nothing more


def test_canny_from_a_memory_map(tmp_path):
    img = _image_2d(np.float32, shape=(40, 46))
    np.save(tmp_path / "img.npy", img)
    mm = np.load(tmp_path / "img.npy", mmap_mode="r")
    for lazy in (da.from_array(mm, chunks=(13, 17)), da.from_array(mm, chunks=(13, 17),
                                                                   lock=True)[3:, 5:40]):
        ref = K.canny(np.asarray(lazy), sigma=1.7, low_threshold=0.05, high_threshold=0.2)
        got = K.canny(lazy, sigma=1.7, low_threshold=0.05, high_threshold=0.2).compute()
        np.testing.assert_array_equal(got, ref)


def test_source_reads_only_for_plain_slices_of_an_array_like(tmp_path):
    from medfeat.kernels import _dask as D

    arr = np.arange(30 * 40, dtype=np.float32).reshape(30, 40)
    np.save(tmp_path / "a.npy", arr)
    mm = np.load(tmp_path / "a.npy", mmap_mode="r")
    src = da.from_array(mm, chunks=(7, 9))
    for x in (src, src[2:29, 3:], da.from_array(_Reader(arr), chunks=8, asarray=False)[1:, :30],
              da.from_array(mm, chunks=(7, 9), lock=True)):
        with dask.config.set({"optimization.fuse.active": True}):
            got = D._source_reads(x)
        with dask.config.set({"optimization.fuse.active": False}):
            assert D._source_reads(x) is not None
        source, get, origin, lock = got
        box = (slice(1, x.shape[0] - 2), slice(4, x.shape[1]))
        moved = tuple(slice(b.start + o, b.stop + o) for b, o in zip(box, origin))
        np.testing.assert_array_equal(D._read(source.compute(), get, moved, lock),
                                      x[box].compute())
    for x in (da.from_array(arr, chunks=(7, 9)),  # NumPy chunks are held in the graph
              src + 1, src[::2], src[[1, 4, 5]], src.rechunk(11), da.zeros((8, 8), chunks=4)):
        assert D._source_reads(x) is None


def test_nan_in_an_array_like_is_refused():
    img = np.zeros((30, 30), np.float32)
    img[25, 3] = np.nan
    for mask in (None, np.ones((30, 30), bool)):
        with pytest.raises(ValueError, match="NaN"):
            K.canny(_read_lazy(img, 10), mask=mask)


def test_canny_hysteresis_connects_across_chunks():
    # one edge whose contrast grows from left to right: only its right end is strong
    img = np.zeros((24, 60), np.float64)
    img[10:, :] = np.linspace(0.1, 0.6, 60)
    chunks, kw = (12, 15), dict(sigma=1.0, low_threshold=0.15, high_threshold=1.2)
    ref = K.canny(img, **kw)
    out = K.canny(_lazy(img, chunks), **kw)
    np.testing.assert_array_equal(out.compute(), ref)
    # chunk-local hysteresis would lose the faint part: the test exercises the merge
    local = da.map_overlap(lambda b: K.canny(b, **kw), _lazy(img, chunks), depth=8,
                           boundary="none", dtype=bool).compute()
    assert ref[:, :15].any() and local.sum() < ref.sum()


def test_canny_chunks_thinner_than_the_halo():
    """Chunks thinner than the halo are merged with their neighbours (each chunk's region then
    spans at most three chunks per axis), and an axis shorter than the halo becomes one chunk."""
    img = _image_2d(np.float32)
    ref = K.canny(img, sigma=2.0)
    for chunks in [(1, 1), (3, 2), ((1, 39), (45, 1))]:
        out = K.canny(_lazy(img, chunks), sigma=2.0)
        assert all(min(c) >= 10 or len(c) == 1 for c in out.chunks), out.chunks
        np.testing.assert_array_equal(out.compute(), ref)


def test_canny_computes_and_labels_each_chunk_once(monkeypatch):
    """The candidates and their labels are computed once per chunk, when canny is called; the
    returned edge map only looks the kept results up, however often it is computed."""
    from medfeat.kernels import _dask as D

    calls = {"candidates": 0, "labels": 0}

    def counted(name, func):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return func(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(D, "_candidates_image_block",
                        counted("candidates", D._candidates_image_block))
    monkeypatch.setattr(D, "_label_chunk", counted("labels", D._label_chunk))
    img = _image_2d(np.float32)
    lazy = _lazy(img, (20, 23))              # 2 x 2 chunks
    out = K.canny(lazy, sigma=1.0)
    assert calls == {"candidates": 4, "labels": 4}
    for _ in range(2):
        np.testing.assert_array_equal(out.compute(), K.canny(img, sigma=1.0))
    assert calls == {"candidates": 4, "labels": 4}
    assert out.chunks == lazy.chunks


def test_canny_on_threads():
    """The kept per-chunk results live where the scheduler keeps them (in this process for
    threads); the edges are the same as in memory."""
    img = _image_2d(np.float64, shape=(40, 46))
    ref = K.canny(img, sigma=1.7, low_threshold=0.05, high_threshold=0.2)
    lazy = _lazy(img, (13, 17))
    with dask.config.set(scheduler="threads"):
        got = K.canny(lazy, sigma=1.7, low_threshold=0.05, high_threshold=0.2).compute()
    np.testing.assert_array_equal(got, ref)


@pytest.fixture
def cluster_client():
    """A fresh LocalCluster for each test (:func:`tests.conftest.local_cluster`): some kill a
    worker."""
    with local_cluster() as client:
        yield client


def _within(seconds, func, *args):
    """``func(*args)`` in a helper thread, failing the test if it has not returned within
    ``seconds``: a cluster whose workers died cannot hold the suite (closing the client in the
    fixture then ends the helper's wait)."""
    from concurrent.futures import ThreadPoolExecutor, TimeoutError

    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(func, *args).result(timeout=seconds)
    except TimeoutError:
        pytest.fail(f"no result from the cluster within {seconds} s")
    finally:
        pool.shutdown(wait=False)


def test_canny_on_a_local_cluster(cluster_client):
    """On a distributed cluster the kept per-chunk results live on the workers and the edges are
    the same as in memory. The worker processes load the kernels from Numba's cache that this
    process (or the other worker) has just written."""
    img = _image_2d(np.float64, shape=(40, 46))
    ref = K.canny(img, sigma=1.7, low_threshold=0.05, high_threshold=0.2)
    lazy = _lazy(img, (13, 17))

    read = _read_lazy(img, (13, 17), pad=2)  # each region read by its task, on a worker

    def run():
        with dask.config.set(scheduler=cluster_client.get):
            out = K.canny(lazy, sigma=1.7, low_threshold=0.05, high_threshold=0.2)
            kept = any(cluster_client.has_what().values())
            return kept, out.compute(), K.canny(read, sigma=1.7, low_threshold=0.05,
                                                high_threshold=0.2).compute()

    kept, got, got_read = _within(240, run)
    assert kept                                        # kept on the workers
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got_read, ref)


def test_canny_batch():
    stack = np.stack([_image_2d(), _image_2d()[::-1]])
    out = K.canny(_lazy(stack, (1, 20, 23)), sigma=1.2, batch=True)
    np.testing.assert_array_equal(out.compute(), K.canny(stack, sigma=1.2, batch=True))


# ------------------------------------------------------------------------- GPU (CuPy) chunks


class _GPUArray(np.ndarray):
    """Stands for a CuPy array where no GPU is: host memory, but exposing
    ``__cuda_array_interface__`` (what the dask path detects GPU chunks by) and kept by the
    concatenations dask makes of it, as CuPy arrays are."""

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (0, False), "version": 3}

    def __array_function__(self, func, types, args, kwargs):
        out = super().__array_function__(func, types, args, kwargs)
        return out.view(_GPUArray) if func is np.concatenate else out


class _DeviceResult:
    """What the CUDA path returns for GPU input (a numba device array): not the chunk's type."""

    def __init__(self, host):
        self.host = host
        self.__cuda_array_interface__ = {"shape": host.shape, "typestr": host.dtype.str,
                                         "data": (0, False), "version": 3}


@pytest.fixture
def fake_gpu(monkeypatch):
    """A CuPy stand-in (module ``fakegpu``: ``_GPUArray`` chunks and an ``asarray`` that wraps a
    device result without a copy, as ``cupy.asarray`` does), the CUDA backend reported available,
    and the per-chunk public kernels replaced by recorders that refuse anything but GPU chunks
    with ``backend='cuda'`` (or 'auto', which takes 'cuda' for them) and return device results."""
    import sys
    import types

    from medfeat.kernels import _dispatch
    from medfeat.kernels import edges as E
    from medfeat.kernels import morphology as M

    for name in ("sobel", "canny", "opening", "binary_erosion"):
        getattr(K, name)  # the public names resolve (lazily, once) to the real kernels
    mod = types.ModuleType("fakegpu")
    mod.asarray = lambda a: (a.host if isinstance(a, _DeviceResult) else np.asarray(a)).view(
        _GPUArray)
    _GPUArray.__module__ = "fakegpu"
    monkeypatch.setitem(sys.modules, "fakegpu", mod)
    why = _dispatch._why_unavailable
    monkeypatch.setattr(_dispatch, "_why_unavailable",
                        lambda backend: None if backend == "cuda" else why(backend))
    calls = []

    def recorder(name, original):
        def on_gpu(block, *args, backend="auto", **kwargs):
            calls.append((name, type(block), backend))
            assert isinstance(block, _GPUArray), f"{name} got a {type(block)} chunk"
            assert backend in ("cuda", "auto"), f"GPU chunk sent to backend={backend!r}"
            host = original(block.view(np.ndarray), *args, backend="numba", **kwargs)
            return _DeviceResult(host)
        return on_gpu

    for module, name in ((E, "sobel"), (E, "canny"), (M, "opening"), (M, "binary_erosion")):
        monkeypatch.setattr(module, name, recorder(name, getattr(module, name)))
    return calls


def _blocks_of(out):
    return dask.compute(*out.to_delayed().ravel())


def _on_gpu(image, chunks):
    return da.from_array(image.view(_GPUArray), chunks=chunks)


def test_gpu_chunks_run_the_cuda_backend_and_stay_on_the_gpu(fake_gpu):
    """Chunks exposing ``__cuda_array_interface__`` (CuPy's) go to the CUDA backend chunk by
    chunk, and the result's chunks and meta are of the chunks' own type."""
    img = _image_2d(np.float32)
    mask = img > np.median(img)
    lazy = _on_gpu(img, (13, 17))
    gpu_mask = _on_gpu(mask, (20, 23))
    assert type(lazy._meta) is _GPUArray
    cases = [
        (K.sobel(lazy), K.sobel(img), "sobel"),
        (K.sobel(lazy, mask=gpu_mask), K.sobel(img, mask=mask), "binary_erosion"),
        (K.opening(lazy, K.disk(2)), K.opening(img, K.disk(2)), "opening"),
    ]
    stack = np.stack([img, img[::-1]])
    cases.append((K.canny(_on_gpu(stack, (1, 40, 46)), sigma=1.5, batch=True),
                  K.canny(stack, sigma=1.5, batch=True), "canny"))
    for out, ref, name in cases:
        assert type(out._meta) is _GPUArray, name
        del fake_gpu[:]
        blocks = _blocks_of(out)
        assert all(type(b) is _GPUArray for b in blocks), name
        assert any(c[0] == name for c in fake_gpu)
        assert all(c[2] in ("cuda", "auto") for c in fake_gpu)
        got = np.asarray(out.compute())
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)


def test_gpu_and_host_data_are_not_mixed(fake_gpu):
    img = _image_2d(np.float32)
    mask = img > np.median(img)
    gpu = _on_gpu(img, (13, 17))
    host = _lazy(img, (13, 17))
    with pytest.raises(K.DeviceChunkError, match="mask lives in host memory"):
        K.sobel(gpu, mask=mask)
    with pytest.raises(K.DeviceChunkError, match="mask lives in host memory"):
        K.sobel(gpu, mask=_lazy(mask, 10))
    with pytest.raises(K.DeviceChunkError, match="mask lives on the GPU"):
        K.sobel(host, mask=mask.view(_GPUArray))
    with pytest.raises(K.DeviceChunkError, match="canny"):
        K.canny(gpu)
    with pytest.raises(K.DeviceChunkError, match="histogram"):
        K.histogram(gpu)
    with pytest.raises(ValueError, match="GPU"):
        K.sobel(gpu, backend="numba")
    assert issubclass(K.DeviceChunkError, ValueError)
    assert not fake_gpu


@pytest.mark.gpu
def test_cupy_chunks_on_a_real_gpu():
    """CuPy chunks on a real GPU: the results stay CuPy arrays and equal the CPU kernels'."""
    cupy = pytest.importorskip("cupy")
    from numba import config, cuda

    if config.ENABLE_CUDASIM or not cuda.is_available():
        pytest.skip("needs a real CUDA GPU")
    img = to_dtype(load_real("camera"), np.float32)
    lazy = da.from_array(cupy.asarray(img), chunks=(200, 300))
    vol = _volume(np.float32)
    lazy_vol = da.from_array(cupy.asarray(vol), chunks=(3, 9, 11))
    stack = np.stack([img, img.T])
    cases = [
        (K.sobel(lazy), K.sobel(img), dict(rtol=1e-5, atol=1e-6)),
        (K.sobel(lazy_vol), K.sobel(vol), dict(rtol=1e-5, atol=1e-6)),
        (K.opening(lazy, K.disk(2)), K.opening(img, K.disk(2)), None),
        (K.opening(lazy_vol, K.ball(1)), K.opening(vol, K.ball(1)), None),
        (K.binary_dilation(lazy > 0.5, K.disk(1)), K.binary_dilation(img > 0.5, K.disk(1)), None),
    ]
    for out, ref, tol in cases:
        assert isinstance(out._meta, cupy.ndarray)
        got = out.compute()
        assert isinstance(got, cupy.ndarray)
        if tol is None:
            np.testing.assert_array_equal(cupy.asnumpy(got), ref)
        else:
            np.testing.assert_allclose(cupy.asnumpy(got), ref, **tol)
    got = K.canny(da.from_array(cupy.asarray(stack), chunks=(1, -1, -1)), sigma=2.0, batch=True)
    assert isinstance(got._meta, cupy.ndarray)
    want = K.canny(stack, sigma=2.0, batch=True)
    # fused multiply-adds on the GPU can flip a pixel whose suppression test is a near tie
    assert int((cupy.asnumpy(got.compute()) != want).sum()) <= max(2, int(want.sum()) // 1000)


# ------------------------------------------------------------------------------ arguments, laziness


def test_bad_arguments_fail_before_any_computation():
    lazy = da.from_array(np.zeros((8, 8), np.float32), chunks=4)
    with pytest.raises(ValueError, match="mode"):
        K.sobel(lazy, mode="bogus")
    with pytest.raises(ValueError, match="footprint"):
        K.erosion(lazy, np.ones((3, 3, 3)))
    with pytest.raises(ValueError, match="dtype"):
        K.sobel(da.zeros((8, 8), dtype=np.int64, chunks=4))
    with pytest.raises(ValueError, match="2-D"):
        K.canny(da.zeros((4, 8, 8), dtype=np.float32, chunks=4))
    with pytest.raises(ValueError, match="mask"):
        K.sobel(lazy, mask=np.ones((7, 8), bool))
    with pytest.raises(ValueError, match="out"):
        K.dilation(lazy, out=np.empty((8, 8), np.float32))
    with pytest.raises(ValueError, match="method"):
        K.normalize(lazy, "bogus")


def test_nan_is_refused_when_the_chunk_is_computed():
    img = np.zeros((8, 8), np.float32)
    img[6, 6] = np.nan
    lazy = K.erosion(da.from_array(img, chunks=4))  # building the graph reads nothing
    with pytest.raises(ValueError, match="NaN"):
        lazy.compute()
    with pytest.raises(ValueError, match="NaN"):
        K.histogram(da.from_array(img, chunks=4))
    with pytest.raises(ValueError, match="NaN"):   # canny labels its chunks when called
        K.canny(da.from_array(img, chunks=4))


def test_batch_stacks_of_the_scalar_and_pointwise_kernels():
    stack = np.stack([to_dtype(load_real("ct_small")[k:k + 20, 30:54], np.uint16)
                      for k in (0, 30, 60, 90, 100)])
    lazy = _lazy(stack, (2, 7, 9))  # chunks cut through the images: rechunked to whole images
    for got, ref in zip(K.histogram(lazy, 16, batch=True), K.histogram(stack, 16, batch=True)):
        np.testing.assert_array_equal(got, ref)
    for fn in (K.threshold_otsu, K.threshold_maxent):
        np.testing.assert_array_equal(fn(lazy, batch=True), fn(stack, batch=True))
    np.testing.assert_array_equal(K.normalize(lazy, "percentile", batch=True).compute(),
                                  K.normalize(stack, "percentile", batch=True))
    np.testing.assert_allclose(K.sobel(lazy, batch=True).compute(), K.sobel(stack, batch=True),
                               rtol=1e-6)
