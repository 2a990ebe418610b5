"""Integrated-gradients attributions for Keras classifiers, and heat-map overlays for the report.

Integrated gradients (Sundararajan, Taly and Yan, "Axiomatic Attribution for Deep Networks", ICML
2017, arXiv:1703.01365) attribute a score ``F`` at an input ``x`` to its pixels relative to a
baseline ``x'`` (a black image by default)::

    IG_i(x) = (x_i - x'_i) * integral_0^1 dF(x' + a (x - x')) / dx_i  da

By the fundamental theorem of calculus for path integrals the attributions sum to
``F(x) - F(x')`` ("completeness"); a numerical quadrature over ``steps`` points approximates the
integral, and ``return_delta=True`` reports how far from exact completeness the result is.

Volumes work the same way (attributions have the volume's shape); :func:`volume_views` picks
three orthogonal slices of a volume and of its attributions for display, and
:func:`plot_attributions` draws them for stacks of volumes.

The only backend-specific step, the input gradient, lives in :mod:`medfeat.deep._backend`.
"""

from __future__ import annotations

import numbers
import os
import tempfile
from pathlib import Path

import numpy as np

from . import _backend

__all__ = ["METHODS", "integrated_gradients", "overlay", "plot_attributions", "volume_views"]

#: Quadrature rules for the path integral (names as in Captum, for familiarity).
METHODS = (
    "gausslegendre",
    "riemann_trapezoid",
    "riemann_middle",
    "riemann_left",
    "riemann_right",
)


def _quadrature(method, steps):
    """Nodes in [0, 1] and weights summing to 1 for ``steps`` gradient evaluations."""
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (nodes + 1.0) / 2.0, weights / 2.0
    if method == "riemann_trapezoid":
        if steps < 2:
            raise ValueError(f"steps must be >= 2 for method='riemann_trapezoid', got {steps}")
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2.0
        return np.linspace(0.0, 1.0, steps), weights
    k = np.arange(steps, dtype=np.float64)
    offset = {"riemann_left": 0.0, "riemann_middle": 0.5, "riemann_right": 1.0}[method]
    return (k + offset) / steps, np.full(steps, 1.0 / steps)


def _positive_int(value, name, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def _model_input_shape(model):
    shape = getattr(model, "input_shape", None)
    if shape is None or isinstance(shape, list) or (shape and isinstance(shape[0], tuple)):
        raise ValueError(f"model must have exactly one input, got input shape {shape}")
    return tuple(shape)


def _as_float_array(value, name):
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or infinity)")
    return arr


def _batched_outputs(model, x, batch_size):
    import keras

    out = [
        keras.ops.convert_to_numpy(model(x[i : i + batch_size], training=False)).astype(np.float64)
        for i in range(0, x.shape[0], batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0,) + tuple(model.output_shape[1:]))


def integrated_gradients(
    model,
    images,
    *,
    target=None,
    baseline=None,
    steps=64,
    batch_size=32,
    method="gausslegendre",
    return_delta=False,
):
    """Integrated-gradients attributions of a Keras classifier's scores to its input pixels.

    Parameters
    ----------
    model : keras.Model
        A single-input model with output ``(batch, n_outputs)`` (probabilities or logits; the
        attributions explain whichever it outputs).
    images : array_like, shape (n, *input_shape) or input_shape
        Inputs exactly as the model takes them (already preprocessed): images ``(n, H, W, C)``
        or, for a 3-D model, volumes ``(n, D, H, W, C)``; one image without the batch axis is
        accepted and gives attributions without it.
    target : None, int or array_like of int, shape (n,)
        The output unit to explain: None explains each image's predicted class (arg max of its
        output), an int the same unit for every image, an array one unit per image.
    baseline : None, float or array_like
        The reference input ``x'``: None is all zeros (a black image), a number a constant image,
        an array anything that broadcasts to ``images`` (one image, or one per image).
    steps : int, default 64
        Number of points on the straight path from ``baseline`` to ``images`` where the gradient is
        evaluated (>= 1; >= 2 for ``"riemann_trapezoid"``).
    batch_size : int, default 32
        Points evaluated per model call: the model sees at most ``batch_size`` inputs at a time,
        whatever ``steps`` and ``n`` are (besides that, memory is a few copies of ``images``).
    method : str, default "gausslegendre"
        One of "gausslegendre", "riemann_trapezoid", "riemann_middle", "riemann_left",
        "riemann_right":
        Quadrature of the path integral. Gauss-Legendre (default) converges fastest for smooth
        models; for ReLU networks (piecewise-linear scores) the trapezoid and midpoint rules do as
        well. The paper's own approximation is ``"riemann_right"``.
    return_delta : bool, default False
        Also return the completeness error per image,
        ``sum(attributions) - (F(x) - F(x'))``.

    Returns
    -------
    attributions : numpy.ndarray, float32, shape like ``images``
    delta : numpy.ndarray, float64, shape (n,)
        Only with ``return_delta=True`` (a scalar for a single image).

    Raises
    ------
    ValueError
        On an image shape that does not fit the model, a baseline that does not broadcast, a target
        out of range, ``steps`` / ``batch_size`` < 1 or an unknown ``method``; the message names the
        argument.

    References
    ----------
    .. [1] M. Sundararajan, A. Taly, Q. Yan, "Axiomatic Attribution for Deep Networks", Proceedings
       of the 34th International Conference on Machine Learning (ICML), 2017.

    Examples
    --------
    For a linear score the attributions are exactly ``weight * (x - baseline)``:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])
    >>> model.layers[0].set_weights([np.array([[1.0], [2.0], [3.0]])])
    >>> integrated_gradients(model, np.array([[1.0, 1.0, 2.0]]), steps=4)
    array([[1., 2., 6.]], dtype=float32)
    """
    in_shape = _model_input_shape(model)
    steps = _positive_int(steps, "steps")
    batch_size = _positive_int(batch_size, "batch_size")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(return_delta, (bool, np.bool_)):
        raise ValueError(f"return_delta must be True or False, got {return_delta!r}")
    alphas, weights = _quadrature(method, steps)

    x = _as_float_array(images, "images")
    single = x.ndim == len(in_shape) - 1
    if single:
        x = x[None]
    if x.ndim != len(in_shape) or any(
        want is not None and got != want for got, want in zip(x.shape[1:], in_shape[1:])
    ):
        raise ValueError(
            f"images must have shape (n, {', '.join(str(d) for d in in_shape[1:])}) or one image "
            f"without the batch axis to fit the model input {in_shape}, got {np.shape(images)}"
        )
    n = x.shape[0]

    if baseline is None:
        base = np.zeros_like(x)
    else:
        b = _as_float_array(baseline, "baseline")
        try:
            base = np.broadcast_to(b, x.shape)
        except ValueError:
            raise ValueError(
                f"baseline must broadcast to the images' shape "
                f"{x.shape[1:] if single else x.shape}, "
                f"got shape {b.shape}"
            ) from None

    n_outputs = _backend._n_outputs(model)
    if target is None:
        t = np.argmax(_batched_outputs(model, x, batch_size), axis=1) if n else np.zeros(0, int)
    else:
        try:
            t = _backend._check_targets(target, n, n_outputs)
        except ValueError as exc:
            raise ValueError(str(exc).replace("target_index", "target")) from None
    t = np.asarray(t, dtype=np.int32)

    diff = x - base
    total = np.zeros(x.shape, dtype=np.float64)
    # The (image, point) pairs, flattened and cut into batches: memory bounded by batch_size inputs.
    n_points = n * steps
    for start in range(0, n_points, batch_size):
        k = np.arange(start, min(start + batch_size, n_points))
        img, pt = np.divmod(k, steps)
        shape = (-1,) + (1,) * (x.ndim - 1)
        path = base[img] + alphas[pt].astype(np.float32).reshape(shape) * diff[img]
        grad = _backend.gradient(model, path, t[img])
        for i in np.unique(img):  # a batch covers few images: one weighted sum each
            sel = img == i
            total[i] += np.tensordot(weights[pt[sel]], grad[sel], axes=1)
    attributions = (diff * total).astype(np.float32)

    if return_delta:
        f_x = _batched_outputs(model, x, batch_size)[np.arange(n), t]
        f_b = _batched_outputs(model, np.ascontiguousarray(base), batch_size)[np.arange(n), t]
        delta = attributions.reshape(n, -1).sum(axis=1, dtype=np.float64) - (f_x - f_b)
    if single:
        attributions = attributions[0]
        if return_delta:
            delta = delta[0]
    return (attributions, delta) if return_delta else attributions


def _grey(image, name):
    img = np.asarray(image)
    if img.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {img.dtype}")
    if img.ndim == 3 and img.shape[-1] in (1, 3, 4):
        img = img[..., :3].mean(axis=-1) if img.shape[-1] > 1 else img[..., 0]
    if img.ndim != 2 or img.size == 0:
        raise ValueError(
            f"{name} must be a non-empty (H, W) or (H, W, C) image, got shape {np.shape(image)}"
        )
    return img.astype(np.float64)


def _unit(a):
    """Min-max scaling to [0, 1]; a constant image becomes zeros, NaNs become 0."""
    a = np.where(np.isfinite(a), a, np.nan)
    if np.all(np.isnan(a)):
        return np.zeros(a.shape)
    lo, hi = np.nanmin(a), np.nanmax(a)
    out = (a - lo) / (hi - lo) if hi > lo else np.zeros(a.shape)
    return np.nan_to_num(out, nan=0.0)


def overlay(
    image, attribution, *, alpha=0.5, cmap="inferno", sign="absolute", clip_percentile=99.0
):
    """An RGB heat map of ``attribution`` blended over the grey-level ``image``.

    The grey image is min-max scaled to [0, 1]. The attribution (summed over a channel axis if it
    has one) is reduced according to ``sign``, clipped at its ``clip_percentile`` percentile (so a
    few extreme pixels do not wash out the rest) and scaled to a heat ``h`` in [0, 1]. Each pixel is
    ``(1 - alpha * h) * grey + alpha * h * cmap(h)``: pixels without attribution stay grey.

    Parameters
    ----------
    image : array_like, shape (H, W), (H, W, 1) or (H, W, 3)
        The image that was explained (any real dtype; RGB is averaged to grey).
    attribution : array_like, shape (H, W) or (H, W, C)
        Attributions for that image, e.g. one item of :func:`integrated_gradients`' output.
    alpha : float in [0, 1], default 0.5
        Opacity of the heat map where the heat is highest.
    cmap : str or matplotlib.colors.Colormap, default "inferno"
        A matplotlib colour map.
    sign : {"absolute", "positive", "negative"}, default "absolute"
        Show ``|attribution|``, only the evidence for the target, or only the evidence against it.
    clip_percentile : float in (0, 100], default 99.0
        Heat values above this percentile of the non-zero heat are shown at full strength.

    Returns
    -------
    numpy.ndarray, uint8, shape (H, W, 3)

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((4, 4)); att = np.zeros((4, 4)); att[1, 2] = 1.0
    >>> rgb = overlay(img, att, alpha=1.0)
    >>> rgb.shape, rgb.dtype, rgb[0, 0].tolist()
    ((4, 4, 3), dtype('uint8'), [0, 0, 0])
    """
    import matplotlib

    grey = _grey(image, "image")
    att = np.asarray(attribution)
    if att.dtype.kind not in "biuf":
        raise ValueError(f"attribution must hold real numbers, got dtype {att.dtype}")
    if att.ndim == 3 and att.shape[:2] == grey.shape:
        att = att.sum(axis=-1)
    if att.shape != grey.shape:
        raise ValueError(
            f"attribution must have the image's shape {grey.shape} "
            "(optionally with a channel axis), "
            f"got {np.shape(attribution)}"
        )
    if (
        isinstance(alpha, (bool, np.bool_))
        or not isinstance(alpha, numbers.Real)
        or not 0 <= alpha <= 1
    ):
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    if sign not in ("absolute", "positive", "negative"):
        raise ValueError(f"sign must be 'absolute', 'positive' or 'negative', got {sign!r}")
    if (
        isinstance(clip_percentile, (bool, np.bool_))
        or not isinstance(clip_percentile, numbers.Real)
        or not 0 < clip_percentile <= 100
    ):
        raise ValueError(f"clip_percentile must be a number in (0, 100], got {clip_percentile!r}")
    try:
        colormap = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
    except KeyError:
        raise ValueError(f"cmap must name a matplotlib colour map, got {cmap!r}") from None
    if not callable(colormap):
        raise ValueError(f"cmap must be a colour map name or a matplotlib Colormap, got {cmap!r}")

    att = np.nan_to_num(att.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    heat = {
        "absolute": np.abs(att),
        "positive": np.maximum(att, 0),
        "negative": np.maximum(-att, 0),
    }[sign]
    nonzero = heat[heat > 0]
    top = np.percentile(nonzero, clip_percentile) if nonzero.size else 0.0
    heat = np.clip(heat / top, 0.0, 1.0) if top > 0 else np.zeros_like(heat)

    grey_rgb = np.repeat(_unit(grey)[..., None], 3, axis=-1)
    colour = np.asarray(colormap(heat))[..., :3]
    a = (alpha * heat)[..., None]
    rgb = (1.0 - a) * grey_rgb + a * colour
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


#: Names of the three spatial axes of a volume, in the order of its array axes.
_AXIS_NAMES = ("depth", "height", "width")


def volume_views(volume, attribution, *, slices="mid"):
    """Three orthogonal slices of a volume and of its attributions, for display.

    Parameters
    ----------
    volume : array_like, shape (D, H, W) or (D, H, W, C)
        The explained volume (channels are averaged for display).
    attribution : array_like, same shape as ``volume`` (or without its channel axis)
        Its attributions, e.g. one item of :func:`integrated_gradients` (summed over channels).
    slices : {"mid", "max"} or (int, int, int)
        ``"mid"``: the middle slice across each axis; ``"max"``: across each axis the slice with
        the largest total absolute attribution; or the three slice indices.

    Returns
    -------
    list of (str, ndarray, ndarray)
        For axes 0 (depth), 1 (height), 2 (width): a caption such as ``"depth 14"``, the 2-D
        image slice and the 2-D attribution slice (float64).

    Examples
    --------
    >>> import numpy as np
    >>> vol = np.zeros((4, 6, 8)); att = np.zeros((4, 6, 8)); att[1, 5, 2] = 1.0
    >>> [(name, img.shape) for name, img, _ in volume_views(vol, att)]
    [('depth 2', (6, 8)), ('height 3', (4, 8)), ('width 4', (4, 6))]
    >>> [name for name, _, _ in volume_views(vol, att, slices="max")]
    ['depth 1', 'height 5', 'width 2']
    """
    vol = np.asarray(volume)
    att = np.asarray(attribution)
    for name, a in (("volume", vol), ("attribution", att)):
        if a.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if vol.ndim not in (3, 4) or vol.size == 0:
        raise ValueError(f"volume must be a non-empty (D, H, W) or (D, H, W, C) volume, got "
                         f"shape {vol.shape}")
    grey = vol.astype(np.float64) if vol.ndim == 3 else vol.mean(axis=-1, dtype=np.float64)
    if att.shape == vol.shape and vol.ndim == 4:
        att = att.sum(axis=-1)
    if att.shape != grey.shape:
        raise ValueError(f"attribution must have the volume's shape {vol.shape} (or "
                         f"{grey.shape}), got {att.shape}")
    att = np.nan_to_num(att.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if isinstance(slices, str):
        if slices == "mid":
            index = [n // 2 for n in grey.shape]
        elif slices == "max":
            mass = np.abs(att)
            index = [int(np.argmax(mass.sum(axis=tuple(b for b in range(3) if b != a))))
                     for a in range(3)]
        else:
            raise ValueError(f"slices must be 'mid', 'max' or three indices, got {slices!r}")
    else:
        try:
            index = [int(i) for i in slices]
        except (TypeError, ValueError):
            index = None
        if index is None or len(index) != 3 or any(not 0 <= i < n
                                                   for i, n in zip(index, grey.shape)):
            raise ValueError(f"slices must be 'mid', 'max' or three indices within "
                             f"{grey.shape}, got {slices!r}")
    return [(f"{_AXIS_NAMES[a]} {index[a]}", np.take(grey, index[a], axis=a),
             np.take(att, index[a], axis=a)) for a in range(3)]


def _is_volume_stack(imgs, atts, volumes):
    if volumes is not None:
        return bool(volumes)
    if imgs.ndim == 5:
        return True
    # (n, H, W, C) with a channel axis that the attributions share or drop, else (n, D, H, W)
    return imgs.ndim == 4 and imgs.shape[-1] not in (1, 3, 4)


def plot_attributions(
    images, attributions, path, *, titles=None, ncols=4, dpi=100, volumes=None, slices="mid",
    **overlay_options
):
    """Write a PNG grid of image / heat-map pairs (for the report); the file is written atomically.

    Parameters
    ----------
    images : array_like, shape (n, H, W) or (n, H, W, C); volumes (n, D, H, W) or (n, D, H, W, C)
        The explained images or volumes. A volume gets one row of three image / heat-map pairs,
        its orthogonal slices chosen by ``slices`` (:func:`volume_views`).
    attributions : array_like, shape of ``images`` (or without their channel axis)
        Their attributions (:func:`integrated_gradients`).
    path : str or os.PathLike
        Destination ``.png``; its folder must exist. Written to a temporary file in the same folder
        and renamed, so readers never see a partial file.
    titles : sequence of str, optional
        One caption per image.
    ncols : int, default 4
        Image / overlay pairs per row.
    dpi : int, default 100
        Resolution of the figure.
    volumes : bool, optional
        Whether ``images`` are volumes; default: 5-D stacks, and 4-D stacks whose last axis is
        not 1, 3 or 4 channels.
    slices : {"mid", "max"} or (int, int, int)
        Which slices of each volume to show (see :func:`volume_views`).
    **overlay_options
        Passed to :func:`overlay` (``alpha``, ``cmap``, ``sign``, ``clip_percentile``).

    Returns
    -------
    pathlib.Path
        The written file.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> imgs = np.random.default_rng(0).random((2, 8, 8))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = plot_attributions(imgs, imgs - 0.5, os.path.join(d, "ig.png"), titles=["a", "b"])
    ...     p.read_bytes()[:4]
    b'\\x89PNG'
    >>> vols = np.random.default_rng(0).random((2, 6, 8, 8))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = plot_attributions(vols, vols - 0.5, os.path.join(d, "ig3d.png"), slices="max")
    ...     p.read_bytes()[:4]
    b'\\x89PNG'
    """
    from matplotlib.figure import Figure

    imgs = np.asarray(images)
    atts = np.asarray(attributions)
    if _is_volume_stack(imgs, atts, volumes):
        return _plot_volume_attributions(imgs, atts, path, titles=titles, dpi=dpi, slices=slices,
                                         **overlay_options)
    if imgs.ndim not in (3, 4) or imgs.shape[0] == 0:
        raise ValueError(f"images must be a non-empty stack (n, H, W[, C]), got shape {imgs.shape}")
    if atts.shape[0] != imgs.shape[0] or atts.shape[1:3] != imgs.shape[1:3]:
        raise ValueError(
            f"attributions must match images in n, H and W {imgs.shape[:3]}, got shape {atts.shape}"
        )
    n = imgs.shape[0]
    if titles is not None:
        titles = [str(s) for s in titles]
        if len(titles) != n:
            raise ValueError(f"titles must hold one caption per image ({n}), got {len(titles)}")
    ncols = _positive_int(ncols, "ncols")
    dpi = _positive_int(dpi, "dpi")
    path = Path(os.fspath(path))
    if not path.parent.is_dir():
        raise ValueError(f"path must be in an existing folder, {str(path.parent)!r} is not one")

    overlays = [overlay(imgs[i], atts[i], **overlay_options) for i in range(n)]
    cols = min(ncols, n)
    rows = -(-n // cols)
    fig = Figure(figsize=(2.0 * 2 * cols, 2.1 * rows), dpi=dpi)
    axes = fig.subplots(rows, 2 * cols, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for i in range(n):
        r, c = divmod(i, cols)
        axes[r, 2 * c].imshow(_grey(imgs[i], "images"), cmap="gray")
        axes[r, 2 * c + 1].imshow(overlays[i])
        if titles is not None:
            axes[r, 2 * c].set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return _save_png(fig, path)


def _save_png(fig, path):
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _check_path(path):
    path = Path(os.fspath(path))
    if not path.parent.is_dir():
        raise ValueError(f"path must be in an existing folder, {str(path.parent)!r} is not one")
    return path


def _plot_volume_attributions(imgs, atts, path, *, titles, dpi, slices, **overlay_options):
    """:func:`plot_attributions` for volumes: one row of three slice pairs per volume."""
    from matplotlib.figure import Figure

    if imgs.ndim not in (4, 5) or imgs.shape[0] == 0:
        raise ValueError(f"images must be a non-empty stack of volumes (n, D, H, W[, C]), got "
                         f"shape {imgs.shape}")
    if atts.shape[:4] != imgs.shape[:4]:
        raise ValueError(f"attributions must match the volumes in n, D, H and W "
                         f"{imgs.shape[:4]}, got shape {atts.shape}")
    n = imgs.shape[0]
    if titles is not None:
        titles = [str(t) for t in titles]
        if len(titles) != n:
            raise ValueError(f"titles must hold one caption per volume ({n}), got {len(titles)}")
    dpi = _positive_int(dpi, "dpi")
    path = _check_path(path)
    rows = [volume_views(imgs[i], atts[i], slices=slices) for i in range(n)]
    overlays = [[overlay(img, att, **overlay_options) for _, img, att in row] for row in rows]
    fig = Figure(figsize=(2.0 * 6, 2.1 * n), dpi=dpi)
    axes = fig.subplots(n, 6, squeeze=False)
    for i, (row, ovs) in enumerate(zip(rows, overlays)):
        for k, ((name, img, _), ov) in enumerate(zip(row, ovs)):
            axes[i, 2 * k].imshow(img, cmap="gray")
            axes[i, 2 * k + 1].imshow(ov)
            caption = name if titles is None or k else f"{titles[i]}\n{name}"
            axes[i, 2 * k].set_title(caption, fontsize=8)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.tight_layout()
    return _save_png(fig, path)
