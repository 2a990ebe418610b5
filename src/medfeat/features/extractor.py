"""A scikit-learn transformer from stacks of images (or volumes) to feature matrices."""

from __future__ import annotations

import functools
import math
import os
import sys

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from . import _distributed, _warm, descriptors
from ._stack import stack_features
from .first_order import (HISTOGRAM_NAMES, INTENSITY_NAMES, _check_mask, histogram_stats,
                          intensity_stats)
from .texture import GLCM_NAMES, glcm_features

__all__ = ["FeatureExtractor", "FAMILIES", "DEFAULT_FAMILIES"]

#: Feature families, in output order, and the names of their columns.
FAMILIES = {
    "intensity": INTENSITY_NAMES,
    "histogram": HISTOGRAM_NAMES,
    "glcm": GLCM_NAMES,
    "edges": tuple(f"{op}_{s}" for op in ("sobel", "prewitt")
                   for s in ("mean", "std", "p50", "p90", "max")),
    "canny": ("density",),
    "thresholds": ("otsu_fraction", "otsu_level", "maxent_fraction", "maxent_level"),
    "granulometry": ("r1", "r2", "r4"),
    "density": ("peak_level", "peak_height", "n_modes", "entropy"),
    # named for images; volumes have ZONES**3 cells (names from descriptors.zone_names)
    "zones": descriptors.zone_names(2),
}
#: The families computed when ``families`` is not given: all but ``zones``, whose values depend
#: on where in the image things are (see :func:`~medfeat.features.zone_stats`).
DEFAULT_FAMILIES = tuple(f for f in FAMILIES if f != "zones")
_KERNEL_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)
# Images per chunk of the whole-stack path: about this many pixels, at most _MAX_CHUNK images.
_CHUNK_PIXELS = 1 << 18
_MAX_CHUNK = 256


def _image_features(image, families, bins, distance, backend, mask=None):
    """Feature vector of one image or volume (float64), ``mask`` its optional region.

    Intermediate results are shared between families: the checked image and mask, the image
    rescaled to [0, 1] for both edge operators and Canny.
    """
    if image.dtype.type not in _KERNEL_DTYPES:
        image = image.astype(np.float64)
    m = _check_mask(mask, image.shape)
    unit = None
    out = []
    for fam in families:
        if fam in ("edges", "canny") and unit is None:
            unit = descriptors._unit(image, m)
        if fam == "intensity":
            d = intensity_stats(image, m)
        elif fam == "histogram":
            d = histogram_stats(image, m, bins=bins)
        elif fam == "glcm":
            d = glcm_features(image, m, distance=distance, levels=bins)
        elif fam == "edges":
            d = {f"{op}_{k}": v for op in ("sobel", "prewitt")
                 for k, v in descriptors._edge_summary(unit, m, op, backend).items()}
        elif fam == "canny":
            d = descriptors._canny_summary(unit, m, 1.0, 0.1, 0.2, backend)
        elif fam == "thresholds":
            d = descriptors.threshold_fractions(image, m, backend=backend)
        elif fam == "granulometry":
            d = descriptors.granulometry(image, m, radii=(1, 2, 4), backend=backend)
        elif fam == "zones":
            d = descriptors.zone_stats(image, m)
        else:
            d = descriptors.density_summary(image, m, backend=backend)
        out.extend(d[name] for name in _family_names(fam, image.ndim))
    return np.asarray(out, dtype=np.float64)


def _family_names(fam, ndim):
    """Column names of family ``fam`` for images of ``ndim`` spatial axes."""
    return descriptors.zone_names(ndim) if fam == "zones" else FAMILIES[fam]


def _file_features(image, *, args):
    """Features of one image read from a file: colour (a last axis of 3 or 4) made grey."""
    from medfeat.io import rgb_to_grey

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        image = rgb_to_grey(image[..., :3])
    return _image_features(image, *args)


def _stack_rows(part, args, colour):
    """Feature rows of a list of ``(image, mask)`` pairs of one shape, by the whole-stack path
    (:func:`medfeat.features._stack.stack_features`); colour images channel by channel."""
    fams, bins, distance, backend = args
    X = np.stack([im for im, _ in part])
    M = None if part[0][1] is None else np.stack([m for _, m in part])
    ndim = X.ndim - 1 - colour

    def names(fam):
        return _family_names(fam, ndim)
    if not colour:
        return stack_features(X, M, fams, bins, distance, backend, names)
    # channels are last (see FeatureExtractor._images); a mask with channels has them last too
    return np.hstack([
        stack_features(np.ascontiguousarray(X[..., c]), M if M is None or M.ndim < X.ndim
                       else np.ascontiguousarray(M[..., c]), fams, bins, distance, backend, names)
        for c in range(X.shape[-1])])


def _progress_line(text):
    print(f"features: {text}", file=sys.stderr, flush=True)


def _serial(fn):
    """``fn`` wrapped to run with one Numba thread in the calling thread (the setting is per
    thread and restored afterwards): images are the unit of parallelism, and on a busy machine a
    fork-join region per kernel call loses whole scheduler slices at its barrier."""
    def run(*args):
        import numba

        prev = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return fn(*args)
        finally:
            numba.set_num_threads(prev)
    return run


class FeatureExtractor(TransformerMixin, BaseEstimator):
    """Radiomics-grade features of each image of a stack, as a scikit-learn transformer.

    Parameters
    ----------
    families : sequence of str, optional
        Which families of :data:`FAMILIES` to compute, output in that table's order; default
        all: ``intensity`` (IBSI-1 3.3), ``histogram`` (IBSI-1 3.4 on ``bins`` bins), ``glcm``
        (IBSI-1 3.6 on ``bins`` levels, 2-D averaged on images, 3-D averaged on volumes),
        ``edges`` (Sobel and Prewitt magnitude statistics), ``canny`` (edge density),
        ``thresholds`` (Otsu and maximum-entropy foreground fractions), ``granulometry``
        (opening spectrum for disks of radius 1, 2, 4) and ``density`` (kernel density
        summaries); see :mod:`medfeat.features.descriptors`. Also available, not in the
        default (:data:`DEFAULT_FAMILIES`): ``zones``, the mean and spread of each cell of a
        4 x 4 grid (4 x 4 x 4 on volumes), for images that are aligned
        (:func:`~medfeat.features.zone_stats`).
    bins : int, optional
        Fixed bin number (IBSI-1 2.7) for the histogram and GLCM families.
    distance : int, optional
        GLCM Chebyshev distance.
    image_shape : tuple of int, optional
        Shape of one image when ``X`` is given as flattened rows ``(n_samples, n_pixels)``.
        Without it, 2-D input is read as ``n_samples`` images of one row each.
    stacked_masks : bool, optional
        When True, every sample of ``X`` is an (image, mask) pair stacked on axis 1: ``X`` is
        ``(n, 2, H, W)`` for images, ``(n, 2, D, H, W)`` for volumes, or flattened rows of
        ``2 * prod(image_shape)`` values (image first). This is the layout to use inside a
        Pipeline, cross-validation or a search, which split ``X`` and would not split a separate
        array of masks.
    n_jobs : int, optional
        Images processed in parallel (joblib; ``None`` is 1, ``-1`` all cores).
    backend : str, optional
        Kernel backend for :mod:`medfeat.kernels` (``"auto"``, ``"cython"``, ``"numba"``, ...).
        The parallel workers are threads: the kernels release the GIL.
    progress : bool, optional
        Show a tqdm progress bar during ``transform``.
    scheduler : dask.distributed.Client, str or int, optional
        Run on a dask cluster instead of local threads: a ``Client``, a scheduler address
        (``"tcp://host:8786"``; a client is opened and closed for each call) or a number ``N`` of
        local worker processes (a ``LocalCluster(n_workers=N, threads_per_worker=1)`` started
        and closed for each call). Images are sent in batches; with :meth:`transform_files` only
        paths are sent and each file is read on a worker. Tasks are pure, so a worker that dies
        has its tasks re-run elsewhere with the same result. The dashboard's address is printed
        once; ``progress`` shows a bar on the client. Needs ``medfeat[dask]``.
    on_error : {"raise", "skip"}, optional
        What :meth:`transform_files` does with a file that cannot be read or processed:
        ``"raise"`` (default) stops with an error naming it; ``"skip"`` logs it by name (logger
        ``medfeat.features``), leaves its row out and goes on.
    channel_axis : int, optional
        The axis of each image that holds colour channels (``-1`` for ``(H, W, C)`` images or
        ``(D, H, W, C)`` volumes), as in scikit-image; ``None`` (default) means grey images. With
        it, every feature is computed on each channel on its own and the channels' vectors are
        concatenated (channel 0's features first); the names end in ``_c0``, ``_c1``, ...

    Attributes
    ----------
    image_shape_ : tuple of int
        Shape of one image (or volume) seen in ``fit``, channel axis included.
    n_channels_ : int
        Channels per image: the length of ``channel_axis``, 1 without it.
    n_features_in_ : int
        Number of input values per sample (pixels, or columns of flattened input; twice the
        pixels with ``stacked_masks``).
    feature_names_in_ : ndarray of str
        Column names, when ``fit`` received a DataFrame of flattened rows.

    Notes
    -----
    Input is a stack ``(n, H, W)`` of images, ``(n, D, H, W)`` of volumes, or flattened rows
    (see ``image_shape``), of any real dtype; it must be non-empty and finite (NaN, infinity,
    complex and ragged input raise ``ValueError``). The output is ``(n, n_features)`` float64 and
    does not depend on ``n_jobs``. ``fit`` learns only the input shape.

    *Regions of interest.* Masks come either stacked into ``X`` (``stacked_masks=True``) or as
    the ``masks`` argument of ``fit``, ``transform`` and ``fit_transform`` (an array shaped like
    ``X``'s images; non-zero is inside). The argument suits direct calls; inside a Pipeline it
    reaches the extractor only through scikit-learn's metadata routing
    (``sklearn.set_config(enable_metadata_routing=True)`` and
    ``FeatureExtractor().set_fit_request(masks=True).set_transform_request(masks=True)``). Every
    sample's mask must select at least one pixel. The intensity, histogram, GLCM (pairs with
    both voxels inside), thresholds and density families use the region's values only. The
    neighbourhood descriptors (edges, Canny, granulometry) filter the whole image, rescaled by
    the region's minimum and maximum, and summarise the result inside the region, so structures
    just outside its border contribute to the values at its edge.

    *Chunks and threads.* The images go through the families in chunks (up to 256 images of
    28 x 28, 4 of 256 x 256): each family runs once per chunk, its kernels on the whole stack
    (``batch=True``) and its statistics over all the chunk's images at once
    (:mod:`medfeat.features._stack`), with the same values, bit for bit, as the per-image
    functions. Each worker runs its kernels on a single thread (parallelism is over chunks).

    *The first run.* Numba compiles the kernels on their first call and keeps them in its
    on-disk cache. When the first ``transform`` finds the cache empty (after an install), it
    compiles Canny's kernels in a second process while it compiles the other families
    (``MEDFEAT_PARALLEL_COMPILE=0``: all in this process); later runs load them from the cache.

    *Colour.* Without ``channel_axis`` a stack ``(n, H, W, 3)`` is read as ``n`` volumes of ``H``
    slices of ``W x 3`` pixels; RGB images need ``channel_axis=-1``. The input is then
    ``(n, H, W, C)`` or ``(n, D, H, W, C)`` (with ``stacked_masks``, ``(n, 2, H, W, C)``; as
    flattened rows, ``image_shape`` must include the channel axis). Masks are either shaped like
    the images, channels included (one region per channel), or like one channel (one region
    for all channels).

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.features import FeatureExtractor
    >>> X = np.random.default_rng(0).integers(0, 255, size=(4, 16, 16)).astype(np.uint8)
    >>> fx = FeatureExtractor(families=["intensity", "glcm"]).fit(X)
    >>> fx.transform(X).shape
    (4, 43)
    >>> fx.get_feature_names_out()[:2].tolist()
    ['intensity__mean', 'intensity__variance']
    >>> masks = np.zeros(X.shape, bool); masks[:, 4:12, 4:12] = True
    >>> F = fx.transform(X, masks=masks)
    >>> bool(F[0, 0] == X[0, 4:12, 4:12].mean())
    True
    >>> pairs = np.stack([X, masks], axis=1)          # (4, 2, 16, 16): image, mask
    >>> fs = FeatureExtractor(families=["intensity", "glcm"], stacked_masks=True)
    >>> bool(np.array_equal(fs.fit_transform(pairs), F))
    True
    >>> rgb = np.stack([X, 255 - X, X // 2], axis=-1)   # (4, 16, 16, 3) colour images
    >>> fc = FeatureExtractor(families=["intensity"], channel_axis=-1).fit(rgb)
    >>> fc.transform(rgb).shape, fc.get_feature_names_out()[[0, 18]].tolist()
    ((4, 54), ['intensity__mean_c0', 'intensity__mean_c1'])
    """

    def __init__(self, families=None, *, bins=32, distance=1, image_shape=None,
                 stacked_masks=False, n_jobs=None, backend="auto", progress=False,
                 channel_axis=None, scheduler=None, on_error="raise"):
        self.families = families
        self.bins = bins
        self.distance = distance
        self.image_shape = image_shape
        self.stacked_masks = stacked_masks
        self.n_jobs = n_jobs
        self.backend = backend
        self.progress = progress
        self.channel_axis = channel_axis
        self.scheduler = scheduler
        self.on_error = on_error

    def _families(self):
        if self.families is None:
            return DEFAULT_FAMILIES
        fams = [self.families] if isinstance(self.families, str) else list(self.families)
        unknown = [f for f in fams if f not in FAMILIES]
        if unknown or not fams:
            raise ValueError(f"unknown feature families {unknown}; choose from {list(FAMILIES)}")
        return tuple(f for f in FAMILIES if f in fams)

    def _check_params(self):
        if not (isinstance(self.bins, (int, np.integer)) and self.bins >= 1):
            raise ValueError(f"bins must be a positive integer, got {self.bins!r}")
        if not (isinstance(self.distance, (int, np.integer)) and self.distance >= 1):
            raise ValueError(f"distance must be a positive integer, got {self.distance!r}")
        if not isinstance(self.stacked_masks, (bool, np.bool_)):
            raise ValueError(f"stacked_masks must be True or False, got {self.stacked_masks!r}")
        ax = self.channel_axis
        if ax is not None and (isinstance(ax, (bool, np.bool_)) or
                               not isinstance(ax, (int, np.integer))):
            raise ValueError(f"channel_axis must be None or an integer axis of each image "
                             f"(e.g. -1 for (H, W, C) colour images), got {ax!r}")
        _distributed.check_scheduler(self.scheduler)
        if self.on_error not in _distributed.ON_ERROR:
            raise ValueError(f"on_error must be 'skip' or 'raise', got {self.on_error!r}")
        return self._families()

    def _channel_axis(self, img_shape):
        """``channel_axis`` as a non-negative axis of an image of shape ``img_shape``, or None."""
        ax = self.channel_axis
        if ax is None:
            return None
        if len(img_shape) not in (3, 4):
            raise ValueError(f"channel_axis={ax} needs colour images (H, W, C) or volumes "
                             f"(D, H, W, C): images of 3 or 4 axes, got shape {tuple(img_shape)}")
        if not -len(img_shape) <= ax < len(img_shape):
            raise ValueError(f"channel_axis={ax} is out of range for images of shape "
                             f"{tuple(img_shape)}")
        return int(ax) % len(img_shape)

    def _images(self, X, reset, masks=None):
        """``(images, masks)`` from ``X`` (and the ``masks`` argument), checked."""
        stacked = bool(self.stacked_masks)
        if stacked and masks is not None:
            raise ValueError("masks are stacked into X (stacked_masks=True); do not also pass "
                             "masks=")
        if hasattr(X, "shape"):                 # arrays and DataFrames keep their column names
            ndim = len(X.shape)
        else:
            try:
                X = np.asarray(X)
            except (ValueError, TypeError) as exc:   # ragged stacks
                raise ValueError(f"X must be a regular stack of images: {exc}") from exc
            ndim = X.ndim
        lead = (2,) if stacked else ()
        colour = self.channel_axis is not None
        dims = (4, 5) if colour else (3, 4)      # axes of X without the stacked pair axis
        if ndim == 2:
            X = validate_data(self, X, reset=reset, dtype="numeric")
            shape = self.image_shape if reset else self.image_shape_
            if shape is None and colour:
                raise ValueError(f"image_shape is needed with channel_axis={self.channel_axis} "
                                 f"to read flattened rows (e.g. (H, W, C)); got 2-D X")
            if shape is None:
                shape = (1, X.shape[1] // 2) if stacked else (1, X.shape[1])
            shape = tuple(int(s) for s in shape)
            if colour:
                self._channel_axis(shape)
            if len(shape) not in tuple(d - 1 for d in dims) or \
                    math.prod(lead + shape) != X.shape[1]:
                what = "twice " if stacked else ""
                raise ValueError(f"image_shape {shape} does not hold {X.shape[1]} values per row "
                                 f"(expected {what}its size)")
            X = X.reshape((X.shape[0],) + lead + shape)
        else:
            X = check_array(X, dtype="numeric", allow_nd=True)
            if X.ndim - len(lead) not in dims or (stacked and X.shape[1] != 2):
                c = ", C" if colour else ""
                if stacked:
                    raise ValueError(f"X must stack (image, mask) pairs on axis 1: (n, 2, H, W{c})"
                                     f" or (n, 2, D, H, W{c}), got shape {X.shape}")
                if colour:
                    raise ValueError(f"X must be a stack of colour images (n, H, W, C) or "
                                     f"volumes (n, D, H, W, C) with channel_axis="
                                     f"{self.channel_axis}, got {X.ndim}-D")
                raise ValueError(f"X must be a stack of 2-D images (n, H, W) or 3-D volumes "
                                 f"(n, D, H, W), got {X.ndim}-D")
            if X.shape[1:].count(0):
                raise ValueError(f"X holds empty images, shape {X.shape}")
            img_shape = X.shape[1 + len(lead):]
            if reset:
                self.n_features_in_ = math.prod(X.shape[1:])
                if hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
            elif img_shape != self.image_shape_:
                raise ValueError(f"X has images of shape {img_shape}, but FeatureExtractor is "
                                 f"expecting {self.image_shape_} as in fit")
        if stacked:
            X, masks = X[:, 0], X[:, 1]
        ax = self._channel_axis(X.shape[1:])
        if reset:
            self.image_shape_ = tuple(X.shape[1:])
            self.n_channels_ = 1 if ax is None else int(X.shape[1 + ax])
        if masks is not None:
            if ax is None:
                masks = self._masks(masks, X.shape)
            else:
                spatial = X.shape[:1 + ax] + X.shape[2 + ax:]
                masks = self._masks(masks, X.shape, spatial=spatial, channel_axis=1 + ax)
        if ax is not None:                       # channels last, whatever the input's layout
            X = np.moveaxis(X, 1 + ax, -1)
        return X, masks

    @staticmethod
    def _masks(masks, shape, spatial=None, channel_axis=None):
        """Checked boolean masks of ``shape``; with ``spatial`` (colour images), masks shaped
        like one channel are accepted too, and masks with channels come back channels last."""
        try:
            masks = np.asarray(masks)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"masks must be a regular stack of masks: {exc}") from exc
        if masks.dtype == object or masks.dtype.kind not in "biuf":
            raise ValueError(f"masks must be boolean or numeric, got dtype {masks.dtype}")
        if spatial is not None and masks.shape == tuple(spatial):
            per_channel = False
        elif masks.shape == tuple(shape):
            per_channel = spatial is not None
        else:
            alt = "" if spatial is None else f" or {tuple(spatial)} (one region for all channels)"
            raise ValueError(f"masks has shape {masks.shape}, expected {tuple(shape)} (one mask "
                             f"per image, shaped like it){alt}")
        if masks.dtype.kind == "f" and not np.all(np.isfinite(masks)):
            raise ValueError("masks contains NaN or infinity")
        masks = masks.astype(bool, copy=False)
        if per_channel:
            masks = np.moveaxis(masks, channel_axis, -1)
            sel = masks.reshape(len(masks), -1, masks.shape[-1]).any(axis=1).all(axis=1)
            what = "select no pixel in some channel"
        else:
            sel = masks.reshape(len(masks), -1).any(axis=1)
            what = "select no pixel"
        empty = np.flatnonzero(~sel)
        if empty.size:
            raise ValueError(f"masks of samples {empty[:10].tolist()} {what}")
        return masks

    def fit(self, X, y=None, masks=None):
        """Check the parameters and learn the input shape.

        Parameters
        ----------
        X : array_like
            Images ``(n, H, W)``, volumes ``(n, D, H, W)`` or flattened rows (with
            ``stacked_masks``, (image, mask) pairs stacked on axis 1).
        y : ignored
        masks : array_like, optional
            Regions of interest, one per image, shaped like the images (checked only).

        Returns
        -------
        self
        """
        self._check_params()
        self._images(X, reset=True, masks=masks)
        return self

    def fit_transform(self, X, y=None, masks=None):
        """``fit(X, y, masks=masks).transform(X, masks=masks)``.

        Parameters
        ----------
        X : array_like
        y : ignored
        masks : array_like, optional

        Returns
        -------
        ndarray of float64, shape (n_samples, n_features)
        """
        return self.fit(X, y, masks=masks).transform(X, masks=masks)

    def transform(self, X, masks=None):
        """Features of every image (inside its mask, when there are masks).

        Parameters
        ----------
        X : array_like
            Same layout and image shape as in ``fit``.
        masks : array_like, optional
            Regions of interest ``(n, *image_shape)``, non-zero inside (colour images: also one
            channel's shape, one region for all channels); see the class notes.

        Returns
        -------
        ndarray of float64, shape (n_samples, n_features)
        """
        check_is_fitted(self)
        fams = self._check_params()
        X, masks = self._images(X, reset=False, masks=masks)
        n = X.shape[0]
        args = (fams, int(self.bins), int(self.distance), self.backend)
        items = [(X[i], None if masks is None else masks[i]) for i in range(n)]
        n_jobs = 1 if self.n_jobs is None else int(self.n_jobs)
        if n_jobs < 0:                           # joblib's convention: -1 all cores, -2 all but one
            n_jobs = (os.cpu_count() or 1) + 1 + n_jobs
        n_jobs = max(1, n_jobs)
        colour = self.channel_axis is not None

        @_serial
        def batch(part):
            return _stack_rows(part, args, colour)
        if self.scheduler is not None:
            with _distributed.client_for(self.scheduler) as client:
                parts = _distributed.run(client, batch, items, progress=self.progress,
                                         desc="features")
            return np.vstack(parts)
        # Images go in chunks through the whole-stack path: large enough that its per-call
        # overhead is shared by many small images, small enough that every worker gets several.
        chunk = max(1, min(_MAX_CHUNK, _CHUNK_PIXELS // max(1, math.prod(X.shape[1:]))))
        if n_jobs > 1:
            chunk = max(1, min(chunk, -(-n // (2 * n_jobs))))
        parts = [items[i:i + chunk] for i in range(0, n, chunk)]
        # On a cold Numba cache, compile the families' kernels in parallel processes first.
        _warm.warm(items[:2], args, colour, log=_progress_line if self.progress else None)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=n, desc="features", unit="img")
        rows = []
        try:
            # Worker threads rather than the caller's, so that the one-thread setting of the
            # kernels never leaks into the caller.
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(n_jobs, len(parts))) as pool:
                for part, block in zip(parts, pool.map(batch, parts)):
                    rows.append(block)
                    if bar is not None:
                        bar.update(len(part))
        finally:
            if bar is not None:
                bar.close()
        return np.vstack(rows)

    def transform_files(self, paths, *, reader=None):
        """Features of image files, one row per file, read where they are computed.

        Unlike :meth:`transform`, no ``fit`` is needed and the files may differ in shape: each
        file is one image (colour images are converted to grey, as ``medfeat features`` does).
        With ``scheduler`` the files are read on the workers; otherwise in local threads
        (``n_jobs``).

        Parameters
        ----------
        paths : sequence of str or path-like
            Image files (any format :func:`medfeat.io.read_image` reads).
        reader : callable, optional
            ``reader(path) -> ndarray``; default :func:`medfeat.io.read_image`. With a scheduler
            it must be picklable (a module-level function).

        Returns
        -------
        features : ndarray of float64, shape (n_read, n_features)
            The rows of the files that were read, in input order.
        read : list of str
            Their paths (all of ``paths`` unless ``on_error="skip"`` left some out).

        Raises
        ------
        medfeat.io.ImageReadError
            With ``on_error="raise"``, for the first file (in input order) that failed, naming it.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from medfeat.features import FeatureExtractor
        >>> folder = tempfile.mkdtemp()
        >>> for k in range(3):
        ...     np.save(os.path.join(folder, f"{k}.npy"), np.full((8, 8), k, np.uint8))
        >>> paths = [os.path.join(folder, f"{k}.npy") for k in range(3)]
        >>> F, read = FeatureExtractor(families=["intensity"]).transform_files(paths)
        >>> F.shape, F[:, 0].tolist()
        ((3, 18), [0.0, 1.0, 2.0])
        """
        fams = self._check_params()
        paths = [str(p) for p in paths]
        if not paths:
            raise ValueError("paths must name at least one file")
        features = functools.partial(_file_features, args=(fams, int(self.bins),
                                                           int(self.distance), self.backend))
        work = _serial(functools.partial(_distributed.file_rows, features=features,
                                         reader=reader, on_error=self.on_error))
        if self.scheduler is not None:
            with _distributed.client_for(self.scheduler) as client:
                results = _distributed.run(client, work, paths, progress=self.progress,
                                           desc="features", unit="file")
        else:
            from concurrent.futures import ThreadPoolExecutor

            n_jobs = 1 if self.n_jobs is None else int(self.n_jobs)
            n_jobs = (os.cpu_count() or 1) if n_jobs < 0 else n_jobs
            with ThreadPoolExecutor(max_workers=max(1, n_jobs)) as pool:
                results = list(pool.map(work, [paths[i:i + 8] for i in range(0, len(paths), 8)]))
        rows, _ = _distributed.collect(results, paths, self.on_error)
        kept = [i for i, r in enumerate(rows) if r is not None]
        if not kept:
            raise ValueError("no file could be read; see the log for each file's error")
        return np.vstack([rows[i] for i in kept]), [paths[i] for i in kept]

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns, ``"<family>__<feature>"`` (with ``channel_axis``,
        ``"<family>__<feature>_c<channel>"``, channel by channel).

        Parameters
        ----------
        input_features : ignored
            Accepted for scikit-learn compatibility; checked against ``feature_names_in_`` when
            that exists.

        Returns
        -------
        ndarray of str
        """
        check_is_fitted(self)
        if input_features is not None and hasattr(self, "feature_names_in_"):
            if list(input_features) != list(self.feature_names_in_):
                raise ValueError("input_features is not equal to feature_names_in_")
        ndim = len(self.image_shape_) - (self.channel_axis is not None)
        names = [f"{fam}__{name}" for fam in self._families()
                 for name in _family_names(fam, ndim)]
        if self.channel_axis is not None:
            names = [f"{name}_c{c}" for c in range(self.n_channels_) for name in names]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = False
        return tags
