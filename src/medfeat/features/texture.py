"""Grey-level co-occurrence matrix (GLCM) features, IBSI-1 section 3.6.

Choices, as the IBSI-1 reference manual (arXiv:1612.07003) asks them to be written down:

- matrices are symmetric (each pair counted in both orders) and built for Chebyshev distance
  ``distance`` along 4 in-plane directions in 2-D, (0, 1), (1, 1), (1, 0), (1, -1) scaled by the
  distance, and the 13 unique directions of the 26-neighbourhood in 3-D (IBSI 3.6);
- a pair counts only when both voxels are inside the mask;
- grey levels are used as given (integers required) unless ``levels`` or ``bin_width`` asks for
  discretisation (IBSI 2.7, see :func:`medfeat.features.first_order.discretise`); as given, the
  matrix spans the levels ``min..max`` of the ROI, ``Ng = max - min + 1`` (absent levels are empty
  rows), and the features use the grey values themselves as ``i`` and ``j``;
- aggregation (IBSI 3.1.2): ``"2d_average"`` computes the features of every (slice, direction)
  matrix and averages them; ``"2d_merged"`` sums the 4 directions of each slice, then averages
  the features over slices; ``"3d_average"`` averages the features of the 13 directional 3-D
  matrices; ``"3d_merged"`` sums the 13 matrices into one. Slices (or directions) without any
  pair are left out of the averages; a region without any pair gives all-zero features;
- entropies are in bits (log2); correlation is 1 when the marginal variance is 0 (as
  :func:`skimage.feature.graycoprops`); the information correlations are 0 when undefined.
"""

from __future__ import annotations

import itertools

import numpy as np

from ._fast import cooc_counts, cooc_counts_2d
from ._fast import glcm_log_sums as _glcm_log_sums
from ._fast import glcm_sums as _glcm_sums
from .first_order import _check_image, _check_mask, _offsets, _weighted, discretise

__all__ = ["glcm_features", "glcm_matrices", "GLCM_NAMES", "AGGREGATIONS"]

GLCM_NAMES = (
    "joint_maximum", "joint_average", "joint_variance", "joint_entropy",
    "difference_average", "difference_variance", "difference_entropy",
    "sum_average", "sum_variance", "sum_entropy",
    "angular_second_moment", "contrast", "dissimilarity",
    "inverse_difference", "normalised_inverse_difference",
    "inverse_difference_moment", "normalised_inverse_difference_moment",
    "inverse_variance", "correlation", "autocorrelation",
    "cluster_tendency", "cluster_shade", "cluster_prominence",
    "information_correlation_1", "information_correlation_2",
)
AGGREGATIONS = ("2d_average", "2d_merged", "3d_average", "3d_merged")

_DIRS_2D = ((0, 1), (1, 1), (1, 0), (1, -1))
_DIRS_3D = tuple(d for d in itertools.product((-1, 0, 1), repeat=3) if d > (0, 0, 0))


def _slices(offset, shape):
    a, b = [], []
    for o, n in zip(offset, shape):
        if o >= 0:
            a.append(slice(0, n - o))
            b.append(slice(o, n))
        else:
            a.append(slice(-o, n))
            b.append(slice(0, n + o))
    return tuple(a), tuple(b)


def _cooc(idx, valid, offset, ng):
    """Symmetric co-occurrence counts of ``idx`` (0-based levels, -1 outside) for one offset."""
    sa, sb = _slices(offset, idx.shape)
    a, b = idx[sa], idx[sb]
    if valid is not None:
        keep = valid[sa] & valid[sb]
        a, b = a[keep], b[keep]
    else:
        a, b = a.ravel(), b.ravel()
    c = np.bincount(a * ng + b, minlength=ng * ng).reshape(ng, ng)
    return c + c.T


def _levels(image, mask, levels, bin_width):
    arr = _check_image(image)
    m = _check_mask(mask, arr.shape)
    vals = arr if m is None else arr[m]
    discretised = levels is not None or bin_width is not None
    if not discretised and arr.dtype.kind == "f" and not np.all(vals == np.round(vals)):
        raise ValueError("grey levels used as given must be integers; pass levels= or "
                         "bin_width= to discretise")
    distinct = counted = None
    if discretised and arr.dtype.kind in "iub":
        distinct, counted = _weighted(vals)
    if counted is not None:
        # Integers: discretise the distinct values once, then look every pixel up (discretising
        # is elementwise given the ROI's extent, which the distinct values share).
        lut, ng = discretise(distinct, bin_width=bin_width, bins=levels)
        if arr.dtype.kind in "ub" and arr.dtype.itemsize <= 2:
            table = np.zeros(int(distinct[-1]) + 1, np.intp)
            table[distinct.astype(np.intp)] = lut - 1
            q0 = table[vals.view(np.uint8) if vals.dtype == bool else vals]
        else:
            lo = int(distinct[0])
            table = np.zeros(int(distinct[-1]) - lo + 1, np.intp)
            table[distinct.astype(np.intp) - lo] = lut - 1
            q0 = table[_offsets(vals, lo)]
        grey = np.arange(1, ng + 1, dtype=np.float64)
    elif discretised:
        q, ng = discretise(vals, bin_width=bin_width, bins=levels)
        grey = np.arange(1, ng + 1, dtype=np.float64)
        q0 = q - 1
    else:
        lo, hi = int(vals.min()), int(vals.max())
        ng = hi - lo + 1
        if ng > 65536:
            raise ValueError(f"{ng} grey levels: discretise with levels= or bin_width=")
        grey = np.arange(lo, hi + 1, dtype=np.float64)
        q0 = _offsets(vals, lo)
    if m is None:
        idx = q0.reshape(arr.shape)
    else:
        idx = np.full(arr.shape, -1, np.intp)
        idx[m] = q0
    return idx, m, grey


def glcm_matrices(image, mask=None, *, distance=1, levels=None, bin_width=None,
                  aggregation=None):
    """The co-occurrence matrices that :func:`glcm_features` aggregates.

    Parameters
    ----------
    image, mask, distance, levels, bin_width, aggregation
        As :func:`glcm_features`.

    Returns
    -------
    matrices : ndarray of int64, shape (k, Ng, Ng)
        Symmetric counts: one per (slice, direction) for ``"2d_average"``, per slice for
        ``"2d_merged"``, per direction for ``"3d_average"``, a single one for ``"3d_merged"``.
    grey : ndarray of float64, shape (Ng,)
        The grey level of each row.

    Examples
    --------
    >>> import numpy as np
    >>> m, grey = glcm_matrices(np.array([[1, 1, 2]]), aggregation="2d_merged")
    >>> m[0].tolist(), grey.tolist()
    ([[2, 1], [1, 0]], [1.0, 2.0])
    """
    arr = np.asarray(image)
    if aggregation is None:
        aggregation = "2d_average" if arr.ndim == 2 else "3d_average"
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    if int(distance) != distance or distance < 1:
        raise ValueError(f"distance must be a positive integer, got {distance!r}")
    distance = int(distance)
    idx, _, grey = _levels(image, mask, levels, bin_width)
    ng = grey.size
    # Counting is compiled (medfeat.features._fast); _cooc below is the NumPy statement of the
    # same counts, kept as the reference the tests compare against.
    if aggregation.startswith("3d"):
        if idx.ndim != 3:
            raise ValueError(f"aggregation {aggregation!r} needs a 3-D volume")
        mats = cooc_counts(idx, [tuple(distance * o for o in d) for d in _DIRS_3D], ng)
        if aggregation == "3d_merged":
            mats = mats.sum(axis=0, keepdims=True)
        return mats, grey
    vols = idx[None] if idx.ndim == 2 else idx
    out = []
    for z in range(vols.shape[0]):
        per_dir = cooc_counts_2d(vols[z], distance, ng)
        if aggregation == "2d_merged":
            out.append(per_dir.sum(axis=0))
        else:
            out.extend(per_dir)
    return np.stack(out), grey


def _log2(q):
    """log2 where q > 0, 0 elsewhere (so that 0 log 0 = 0)."""
    out = np.zeros_like(q)
    np.log2(q, out=out, where=q > 0)
    return out


def _features_numpy(mats, grey, per=None):
    """IBSI-1 3.6 features of each matrix of ``mats`` (k, Ng, Ng); returns (k, n_features).

    The NumPy statement of the features, kept as the reference :func:`_features` (which the
    features use) is tested against, bit for bit.

    ``per``: the matrices come in groups of ``per`` consecutive ones (one image's directions,
    for a stack of images). The matrix-vector products are then taken group by group, as a
    call on one group alone takes them: BLAS computes a row differently depending on where it
    falls in its blocks of rows, so a product over all the groups at once could differ in the
    last bit. Everything else here is elementwise or reduces each matrix on its own.
    """
    k, ng, _ = mats.shape

    def mv(a, v):
        if per is None:
            return a @ v
        return (a.reshape(-1, per, a.shape[-1]) @ v).reshape(-1)
    tot = mats.sum(axis=(1, 2)).astype(np.float64)
    p = mats / tot[:, None, None]
    i = grey[:, None]
    j = grey[None, :]
    pi = p.sum(axis=2)                      # marginal (rows); symmetric so equals columns
    mu = mv(pi, grey)
    var = mv(pi, grey * grey) - mu * mu
    var = np.maximum(var, 0.0)
    logp = _log2(p)
    hxy = -(p * logp).sum(axis=(1, 2))

    # Diagonal (|i - j| = d) and anti-diagonal (i + j = s) probabilities via index bincounts.
    li = np.arange(ng)
    dk = np.abs(li[:, None] - li[None, :]).ravel()
    sk = (li[:, None] + li[None, :]).ravel()
    pf = p.reshape(k, -1)
    pd = np.zeros((k, ng))
    ps = np.zeros((k, 2 * ng - 1))
    for t in range(k):
        pd[t] = np.bincount(dk, weights=pf[t], minlength=ng)
        ps[t] = np.bincount(sk, weights=pf[t], minlength=2 * ng - 1)
    step = grey[1] - grey[0] if ng > 1 else 1.0
    dvals = np.arange(ng) * step
    svals = 2 * grey[0] + np.arange(2 * ng - 1) * step

    def _entropy(q):
        return -(q * _log2(q)).sum(axis=-1)

    d_avg = mv(pd, dvals)
    s_avg = mv(ps, svals)
    diff = np.abs(i - j)
    diff2 = diff * diff
    cl = (i + j)[None] - 2 * mu[:, None, None]
    pcl2 = p * (cl * cl)
    pcl3 = pcl2 * cl
    hx = _entropy(pi)
    pipj = pi[:, :, None] * pi[:, None, :]
    logpipj = _log2(pipj)
    hxy1 = -(p * logpipj).sum(axis=(1, 2))
    hxy2 = -(pipj * logpipj).sum(axis=(1, 2))
    cov = (p * (i * j)[None]).sum(axis=(1, 2)) - mu * mu
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(var > 1e-15, cov / np.where(var > 1e-15, var, 1.0), 1.0)
        ic1 = np.where(hx > 0, (hxy - hxy1) / np.where(hx > 0, hx, 1.0), 0.0)
    ic2 = np.sqrt(np.clip(1.0 - np.exp(-2.0 * (hxy2 - hxy)), 0.0, None))
    inv_var_w = np.zeros_like(dvals)
    inv_var_w[1:] = 1.0 / (dvals[1:] ** 2)
    cols = {
        "joint_maximum": p.max(axis=(1, 2)),
        "joint_average": mu,
        "joint_variance": var,
        "joint_entropy": hxy,
        "difference_average": d_avg,
        "difference_variance": mv(pd, dvals * dvals) - d_avg * d_avg,
        "difference_entropy": _entropy(pd),
        "sum_average": s_avg,
        "sum_variance": mv(ps, svals * svals) - s_avg * s_avg,
        "sum_entropy": _entropy(ps),
        "angular_second_moment": (p * p).sum(axis=(1, 2)),
        "contrast": (p * diff2[None]).sum(axis=(1, 2)),
        "dissimilarity": (p * diff[None]).sum(axis=(1, 2)),
        "inverse_difference": (p / (1.0 + diff)[None]).sum(axis=(1, 2)),
        "normalised_inverse_difference": (p / (1.0 + diff / ng)[None]).sum(axis=(1, 2)),
        "inverse_difference_moment": (p / (1.0 + diff2)[None]).sum(axis=(1, 2)),
        "normalised_inverse_difference_moment":
            (p / (1.0 + diff2 / ng ** 2)[None]).sum(axis=(1, 2)),
        "inverse_variance": mv(pd, inv_var_w),
        "correlation": corr,
        "autocorrelation": (p * (i * j)[None]).sum(axis=(1, 2)),
        "cluster_tendency": pcl2.sum(axis=(1, 2)),
        "cluster_shade": pcl3.sum(axis=(1, 2)),
        "cluster_prominence": (pcl3 * cl).sum(axis=(1, 2)),
        "information_correlation_1": ic1,
        "information_correlation_2": ic2,
    }
    return np.stack([cols[name] for name in GLCM_NAMES], axis=1)


def _features(mats, grey, per=None):
    """:func:`_features_numpy`, bit for bit, with its sums over each matrix compiled
    (:mod:`medfeat.features._fast`: NumPy's pairwise summation in the same order), one matrix
    at a time. Logarithms, exponentials and matrix-vector products are still NumPy's, so they
    are the same functions as in the reference; the logarithms are taken of the positive
    entries of the joint and marginal-product matrices only.
    """
    k, ng, _ = mats.shape

    def mv(a, v):
        if per is None:
            return a @ v
        return (a.reshape(-1, per, a.shape[-1]) @ v).reshape(-1)

    i = grey[:, None]
    j = grey[None, :]
    diff = np.abs(i - j)
    diff2 = diff * diff
    pi, pd, ps, sums, pos_p, pos_q = _glcm_sums(
        mats, np.stack([i * j, diff2, diff]),
        np.stack([1.0 + diff, 1.0 + diff / ng, 1.0 + diff2, 1.0 + diff2 / ng ** 2]))
    p_max, asm, autocorr, contrast, dissimilarity = sums[:, :5].T
    inverse = sums[:, 5:]
    mu = mv(pi, grey)
    var = mv(pi, grey * grey) - mu * mu
    var = np.maximum(var, 0.0)
    hxy, hxy1, hxy2, c_tend, c_shade, c_prom = _glcm_log_sums(
        mats, pi, np.log2(pos_p), np.log2(pos_q), mu, i + j).T
    step = grey[1] - grey[0] if ng > 1 else 1.0
    dvals = np.arange(ng) * step
    svals = 2 * grey[0] + np.arange(2 * ng - 1) * step

    def _entropy(q):
        return -(q * _log2(q)).sum(axis=-1)

    d_avg = mv(pd, dvals)
    s_avg = mv(ps, svals)
    hx = _entropy(pi)
    cov = autocorr - mu * mu
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(var > 1e-15, cov / np.where(var > 1e-15, var, 1.0), 1.0)
        ic1 = np.where(hx > 0, (hxy - hxy1) / np.where(hx > 0, hx, 1.0), 0.0)
    ic2 = np.sqrt(np.clip(1.0 - np.exp(-2.0 * (hxy2 - hxy)), 0.0, None))
    inv_var_w = np.zeros_like(dvals)
    inv_var_w[1:] = 1.0 / (dvals[1:] ** 2)
    cols = {
        "joint_maximum": p_max,
        "joint_average": mu,
        "joint_variance": var,
        "joint_entropy": hxy,
        "difference_average": d_avg,
        "difference_variance": mv(pd, dvals * dvals) - d_avg * d_avg,
        "difference_entropy": _entropy(pd),
        "sum_average": s_avg,
        "sum_variance": mv(ps, svals * svals) - s_avg * s_avg,
        "sum_entropy": _entropy(ps),
        "angular_second_moment": asm,
        "contrast": contrast,
        "dissimilarity": dissimilarity,
        "inverse_difference": inverse[:, 0],
        "normalised_inverse_difference": inverse[:, 1],
        "inverse_difference_moment": inverse[:, 2],
        "normalised_inverse_difference_moment": inverse[:, 3],
        "inverse_variance": mv(pd, inv_var_w),
        "correlation": corr,
        "autocorrelation": autocorr,
        "cluster_tendency": c_tend,
        "cluster_shade": c_shade,
        "cluster_prominence": c_prom,
        "information_correlation_1": ic1,
        "information_correlation_2": ic2,
    }
    return np.stack([cols[name] for name in GLCM_NAMES], axis=1)


def glcm_features(image, mask=None, *, distance=1, levels=None, bin_width=None,
                  aggregation=None):
    """IBSI-1 grey-level co-occurrence matrix features of a 2-D image or 3-D volume.

    Parameters
    ----------
    image : array_like, 2-D or 3-D
        Grey levels (integers) or, with ``levels``/``bin_width``, any finite intensities.
    mask : array_like of bool, optional
        Region of interest; default the whole image.
    distance : int, optional
        Chebyshev distance between the voxels of a pair.
    levels : int, optional
        Discretise to this fixed number of bins first (IBSI 2.7).
    bin_width : float, optional
        Discretise with this fixed bin width first (origin: the ROI minimum).
    aggregation : {"2d_average", "2d_merged", "3d_average", "3d_merged"}, optional
        How matrices are combined (see the module notes). Default ``"2d_average"`` for 2-D
        images, ``"3d_average"`` for volumes; ``"2d_*"`` on a volume works slice by slice along
        the first axis.

    Returns
    -------
    dict of str to float
        The 25 features of IBSI-1 section 3.6, named as :data:`GLCM_NAMES`.

    Raises
    ------
    ValueError
        For bad input, non-integer grey levels without discretisation, an unknown aggregation, a
        3-D aggregation on a 2-D image or a non-positive distance.

    References
    ----------
    IBSI-1 reference manual (arXiv:1612.07003), sections 3.1.2 (aggregation) and 3.6 (GLCM);
    Haralick R.M. et al., IEEE Trans. Syst. Man Cybern. 3 (1973) 610-621.

    Examples
    --------
    >>> import numpy as np
    >>> f = glcm_features(np.array([[1, 2], [2, 1]]))
    >>> round(f["contrast"], 4), round(f["joint_average"], 4)
    (0.5, 1.5)
    """
    mats, grey = glcm_matrices(image, mask, distance=distance, levels=levels,
                               bin_width=bin_width, aggregation=aggregation)
    keep = mats.sum(axis=(1, 2)) > 0
    if not keep.any():
        return dict.fromkeys(GLCM_NAMES, 0.0)
    vals = _features(mats[keep], grey).mean(axis=0)
    return {name: float(v) for name, v in zip(GLCM_NAMES, vals)}
