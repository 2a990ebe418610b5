"""Segmentation datasets: images with a label map per image (0 is background).

A :class:`SegmentationSet` holds train, validation and test splits of ``(images, masks)`` with
``masks[i]`` the integer class of every pixel of ``images[i]``. It comes from an ``.npz`` file in
the MedMNIST-like layout ``{train,val,test}_images`` / ``{train,val,test}_masks``
(:func:`load_segmentation_npz`) or from the embedded synthetic CT phantoms with their liver and
spleen outlined (:func:`make_phantom_segmentation`).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from ._errors import ImageReadError

__all__ = ["SegmentationSet", "load_segmentation_npz", "make_phantom_segmentation"]

_SPLITS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class SegmentationSet:
    """Train, validation and test splits of ``(images, masks)``.

    Attributes
    ----------
    train, val, test : tuple of ndarray
        ``(images, masks)``: images ``(n, H, W)`` or ``(n, H, W, C)``, masks ``(n, H, W)`` of
        integer classes ``0 .. len(classes) - 1``.
    classes : tuple of str
        Class names, background first.
    name : str
    """

    train: tuple
    val: tuple
    test: tuple
    classes: tuple
    name: str = ""

    @property
    def sizes(self):
        """Images per split ``(train, val, test)``."""
        return tuple(int(getattr(self, s)[0].shape[0]) for s in _SPLITS)


def _check_pair(images, masks, where):
    images, masks = np.asarray(images), np.asarray(masks)
    if images.ndim not in (3, 4) or images.dtype.kind not in "buif" or images.shape[0] == 0:
        raise ValueError(f"{where}_images must be a non-empty stack (n, H, W) or (n, H, W, C) of "
                         f"real numbers, got shape {images.shape} and dtype {images.dtype}")
    if masks.shape != images.shape[:3]:
        raise ValueError(f"{where}_masks must have shape {images.shape[:3]} (one label per "
                         f"pixel of {where}_images), got {masks.shape}")
    if masks.dtype.kind not in "bui":
        raise ValueError(f"{where}_masks must hold integer class labels, got dtype {masks.dtype}")
    if masks.size and int(masks.min()) < 0:
        raise ValueError(f"{where}_masks holds a negative label ({int(masks.min())}); classes "
                         "are 0 (background), 1, 2, ...")
    return images, masks.astype(np.int64)


def _finish(pairs, classes, name):
    n_classes = max(int(m.max()) for _, m in pairs.values()) + 1
    n_classes = max(n_classes, 2)
    if classes is None:
        classes = ("background",) + tuple(f"class {c}" for c in range(1, n_classes))
    classes = tuple(str(c) for c in classes)
    if len(classes) < n_classes:
        raise ValueError(f"classes names {len(classes)} classes but the masks hold labels up to "
                         f"{n_classes - 1}")
    shapes = {p[0].shape[1:] for p in pairs.values()}
    if len(shapes) > 1:
        raise ValueError(f"the splits' images have different shapes {sorted(shapes)}")
    return SegmentationSet(pairs["train"], pairs["val"], pairs["test"], classes, name)


def load_segmentation_npz(path, *, classes=None, name=None):
    """A :class:`SegmentationSet` from an ``.npz`` of ``{split}_images`` and ``{split}_masks``.

    Parameters
    ----------
    path : str or os.PathLike
    classes : sequence of str, optional
        Class names, background first (default ``background``, ``class 1``, ...).
    name : str, optional
        Default: the file name without its extension.

    Returns
    -------
    SegmentationSet

    Raises
    ------
    ImageReadError
        The file cannot be read as ``.npz``, or a key is missing.
    ValueError
        A mask does not match its images, or holds negative or non-integer labels.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> x = np.zeros((4, 8, 8), np.uint8); m = np.zeros((4, 8, 8), np.uint8); m[:, 2:5, 2:5] = 1
    >>> path = os.path.join(tempfile.mkdtemp(), "seg.npz")
    >>> np.savez(path, **{f"{s}_{k}": v for s in ("train", "val", "test")
    ...                   for k, v in (("images", x), ("masks", m))})
    >>> ds = load_segmentation_npz(path, classes=("background", "organ"))
    >>> ds.sizes, ds.classes, ds.name
    ((4, 4, 4), ('background', 'organ'), 'seg')
    """
    path = os.fspath(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ImageReadError(path, f"not a readable .npz file ({exc})") from exc
    with archive:
        missing = [f"{s}_{k}" for s in _SPLITS for k in ("images", "masks")
                   if f"{s}_{k}" not in archive.files]
        if missing:
            raise ImageReadError(path, f"missing {', '.join(missing)} (a segmentation .npz holds "
                                       "{train,val,test}_images and {train,val,test}_masks)")
        pairs = {s: _check_pair(archive[f"{s}_images"], archive[f"{s}_masks"], s)
                 for s in _SPLITS}
    stem = os.path.splitext(os.path.basename(path))[0]
    return _finish(pairs, classes, stem if name is None else name)


def make_phantom_segmentation(n=600, size=48, seed=0, *, val_size=0.15, test_size=0.15):
    """The embedded synthetic CT phantoms with their liver (1) and spleen (2) outlined.

    The slices are those of :func:`medfeat.io.make_phantoms` for the same ``n``, ``size`` and
    ``seed`` (anatomy, noise and lesions included); the masks are the organs as drawn, before the
    slice's blur and noise. Split at random (seeded) into train, validation and test.

    Parameters
    ----------
    n : int, optional
        Slices, at least 20.
    size : int, optional
        Side in pixels, at least 32.
    seed : int, optional
    val_size, test_size : float, optional
        Shares of the validation and test splits.

    Returns
    -------
    SegmentationSet
        uint8 images, masks of ``("background", "liver", "spleen")``.

    Examples
    --------
    >>> ds = make_phantom_segmentation(n=40, size=32, seed=1)
    >>> ds.sizes, ds.classes
    ((28, 6, 6), ('background', 'liver', 'spleen'))
    >>> sorted(set(ds.train[1].ravel().tolist()))
    [0, 1, 2]
    """
    from ._phantoms import ORGANS, make_slices

    for nm, v, lo in (("n", n, 20), ("size", size, 32)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{nm} must be an integer >= {lo}, got {v!r}")
    for nm, v in (("val_size", val_size), ("test_size", test_size)):
        if not 0 < float(v) < 0.5:
            raise ValueError(f"{nm} must be a share between 0 and 0.5, got {v!r}")
    images, _, _, organs = make_slices(int(n), int(size), seed, organs=True)
    order = np.random.default_rng([int(seed), 7]).permutation(int(n))
    n_val, n_test = int(round(val_size * n)), int(round(test_size * n))
    parts = {"test": order[:n_test], "val": order[n_test:n_test + n_val],
             "train": order[n_test + n_val:]}
    pairs = {s: (images[np.sort(i)], organs[np.sort(i)].astype(np.int64))
             for s, i in parts.items()}
    names = ("background",) + tuple(sorted(ORGANS, key=ORGANS.get))
    return _finish(pairs, names, "phantom organs")
