"""Canny's hysteresis resolved across chunks (what ``medfeat.kernels`` does on dask arrays): each
chunk's share (``chunk_hysteresis``: its weak blobs flooded, those left open numbered along its
sides) against a reference built from ``scipy.ndimage.label``, and the merged result of a whole
chunking against the hysteresis of the whole map."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

H = pytest.importorskip("medfeat._kernels.numba_cpu.hysteresis")
from medfeat.kernels import _dask as D  # noqa: E402

EIGHT = np.ones((3, 3), bool)


def _flood(cand):
    """The hysteresis of a whole candidate map: components of the candidates holding a 2."""
    comp, n = ndi.label(cand > 0, structure=EIGHT)
    keep = np.zeros(n + 1, bool)
    keep[comp[cand == 2]] = True
    keep[0] = False
    return keep[comp]


def _reference(cand):
    """``chunk_hysteresis`` the slow way: weak blobs by scipy, kept when next to a strong pixel,
    open (numbered 2, 3, ... in the raster order of their first pixel) when they reach a side."""
    blobs, n = ndi.label(cand == 1, structure=EIGHT)
    near_strong = ndi.binary_dilation(cand == 2, structure=EIGHT)
    kept_blob = np.zeros(n + 1, bool)
    kept_blob[blobs[near_strong & (blobs > 0)]] = True
    side = np.zeros(n + 1, bool)
    for line in (blobs[0], blobs[-1], blobs[:, 0], blobs[:, -1]):
        side[line] = True
    open_blob = side & ~kept_blob
    open_blob[0] = kept_blob[0] = False
    number = np.zeros(n + 1, np.int64)
    number[open_blob] = np.arange(2, int(open_blob.sum()) + 2)
    kept = (cand == 2) | kept_blob[blobs]
    nums = np.where(kept, 1, number[blobs])
    sides = (nums[0], nums[-1], nums[:, 0], nums[:, -1])
    pos = np.flatnonzero(number[blobs].reshape(-1))
    return kept, pos, number[blobs].reshape(-1)[pos], int(open_blob.sum()) + 1, sides


def _maps():
    rng = np.random.default_rng(11)
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        cand = (rng.random((h, w)) < rng.uniform(0.05, 0.7)).astype(np.uint8)
        cand[cand > 0] += (rng.random(int(cand.sum())) < rng.uniform(0.0, 0.4)).astype(np.uint8)
        yield cand
    yield np.zeros((5, 9), np.uint8)
    yield np.full((6, 4), 2, np.uint8)
    yield np.ones((7, 3), np.uint8)                         # one open blob, no strong pixel
    ring = np.zeros((30, 30), np.uint8)                     # a weak ring around a strong dot
    ring[5, 5:25] = ring[24, 5:25] = ring[5:25, 5] = ring[5:25, 24] = 1
    ring[15, 15] = 2
    yield ring
    yield np.tile(np.array([1, 0], np.uint8), (1, 70000))   # 70,000 open blobs: uint32 numbers


@pytest.mark.parametrize("cand", list(_maps()), ids=lambda c: f"{c.shape}")
def test_chunk_hysteresis_equals_the_scipy_reference(cand):
    kept, pos, num, nb, strong, *sides = H.chunk_hysteresis(cand)
    r_kept, r_pos, r_num, r_nb, r_sides = _reference(cand)
    assert kept.dtype == np.bool_ and kept.shape == cand.shape
    np.testing.assert_array_equal(kept, r_kept)
    order = np.argsort(pos)
    np.testing.assert_array_equal(pos[order], r_pos)
    np.testing.assert_array_equal(num[order], r_num)
    assert nb == r_nb and list(strong) == [1]
    dtype = np.uint16 if nb < 1 << 16 else np.uint32
    for got, ref in zip(sides, r_sides):
        assert got.dtype == dtype and num.dtype == dtype
        np.testing.assert_array_equal(got, ref)


def test_the_window_reads_nothing_outside_it():
    rng = np.random.default_rng(3)
    cand = rng.integers(0, 3, (40, 50)).astype(np.uint8)
    window = (4, 7, 25, 31)
    got = H.chunk_hysteresis(cand, window)
    ref = H.chunk_hysteresis(cand[4:29, 7:38].copy())
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(g, r)


@st.composite
def _cuts(draw, n):
    cuts = draw(st.lists(st.integers(1, n - 1), max_size=4, unique=True)) if n > 1 else []
    return [0, *sorted(cuts), n]


@settings(max_examples=60, deadline=None)
@given(data=st.data(), h=st.integers(1, 40), w=st.integers(1, 40),
       density=st.floats(0.05, 0.8), strong=st.floats(0.0, 0.3), seed=st.integers(0, 2**32 - 1))
def test_chunks_merged_equal_the_whole_map(data, h, w, density, strong, seed):
    """Any chunking, merged through the numbers along the chunks' sides, gives the hysteresis of
    the whole map (components that wind in and out of chunks, meet only at a corner, ...)."""
    rng = np.random.default_rng(seed)
    cand = (rng.random((h, w)) < density).astype(np.uint8)
    cand[cand > 0] += (rng.random(int(cand.sum())) < strong).astype(np.uint8)
    rows, cols = data.draw(_cuts(h)), data.draw(_cuts(w))
    grid = (len(rows) - 1, len(cols) - 1)
    parts = [D._label_chunk(cand[rows[i]:rows[i + 1], cols[j]:cols[j + 1]])
             for i in range(grid[0]) for j in range(grid[1])]
    offsets, table = D._edge_table([D._summary_of(p) for p in parts], grid)
    out = np.block([[D._finish_chunk(parts[i * grid[1] + j], int(offsets[i, j]), table)
                     for j in range(grid[1])] for i in range(grid[0])])
    np.testing.assert_array_equal(out, _flood(cand))
