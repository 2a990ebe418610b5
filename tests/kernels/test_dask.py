"""The public kernels on dask arrays: lazy results identical to the in-memory call for any chunking
(Hypothesis draws chunk sizes that do and do not divide the shape), 2-D and 3-D."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medfeat import kernels as K

from ..conftest import load_real, load_volume, to_dtype

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


def test_canny_on_a_local_cluster():
    """On a distributed cluster the kept per-chunk results live on the workers and the edges are
    the same as in memory. Tasks left without a worker fail after a minute instead of waiting
    forever (dask's ``no-workers-timeout``), so a cluster that loses its workers fails the test
    with the workers' log in the captured output rather than stalling the suite."""
    distributed = pytest.importorskip("distributed")
    img = _image_2d(np.float64, shape=(40, 46))
    ref = K.canny(img, sigma=1.7, low_threshold=0.05, high_threshold=0.2)
    lazy = _lazy(img, (13, 17))
    with dask.config.set({"distributed.scheduler.no-workers-timeout": "60s"}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client, dask.config.set(scheduler=client.get):
        out = K.canny(lazy, sigma=1.7, low_threshold=0.05, high_threshold=0.2)
        assert any(client.has_what().values())          # kept on the workers
        np.testing.assert_array_equal(out.compute(), ref)


def test_canny_batch():
    stack = np.stack([_image_2d(), _image_2d()[::-1]])
    out = K.canny(_lazy(stack, (1, 20, 23)), sigma=1.2, batch=True)
    np.testing.assert_array_equal(out.compute(), K.canny(stack, sigma=1.2, batch=True))


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
