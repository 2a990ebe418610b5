"""Datasets: ``(images, labels)`` splits from MedMNIST files, image folders, folders of DICOM series
(volumes) and synthetic phantoms.

Every loader returns a :class:`Dataset` of three :class:`Split` s (train, val, test). Sources
without a validation or test split get one by :func:`stratified_split`, seeded, so a run can be repeated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from typing import NamedTuple

import numpy as np

from ._errors import ImageReadError, check_file, check_folder

__all__ = ["Split", "Dataset", "stratified_split", "load_npz", "ImageFolder", "load_medmnist",
           "make_phantoms", "make_phantom_volumes", "DownloadError", "default_cache",
           "load_series_folder", "is_series_folder", "label_strata", "resize_images"]


class DownloadError(OSError):
    """A dataset could not be fetched: offline, a server error, or a wrong checksum.

    Nothing is left behind: the download goes to a temporary file in the cache folder that is
    renamed into place only once its MD5 matches.
    """


class Split(NamedTuple):
    """One split: ``images`` ``(n, ...)`` and integer ``labels`` ``(n,)``, or 0/1 ``(n, L)`` for a
    multi-label task."""

    images: np.ndarray
    labels: np.ndarray


def _as_labels(labels, where):
    """Labels as int64 ``(n,)`` from ``(n,)`` or ``(n, 1)``, or a multi-label 0/1 matrix
    ``(n, L)`` (``L >= 2``) as int64; anything else is refused."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim == 2 and labels.shape[1] >= 2:
        if labels.dtype.kind not in "iubf" or not np.all(np.isin(labels, (0, 1))):
            raise ValueError(f"{where}: multi-label labels (n, n_labels) must hold 0 and 1 "
                             f"only, got dtype {labels.dtype}")
        return labels.astype(np.int64)
    if labels.ndim != 1:
        raise ValueError(f"{where}: labels must have shape (n,), (n, 1) or (n, n_labels) of 0/1 "
                         f"(multi-label), got {labels.shape}")
    if labels.size and labels.dtype.kind not in "iub":
        if labels.dtype.kind != "f" or not np.all(np.isfinite(labels)) or \
                not np.all(labels == np.round(labels)):
            raise ValueError(f"{where}: labels must be integers, got dtype {labels.dtype}")
    out = labels.astype(np.int64)
    if out.size and out.min() < 0:
        raise ValueError(f"{where}: labels must be >= 0, got {out.min()}")
    return out


def label_strata(labels, *, min_count=10):
    """One integer stratum per sample, for stratified splits of any labels.

    Single-label ``(n,)``: the labels themselves. Multi-label ``(n, L)`` of 0/1: ``1 + k`` for
    the row's rarest positive label ``k`` (by its count in ``labels``), 0 for a row without any
    finding; strata with fewer than ``min_count`` rows are merged into the largest one. Dealing
    each stratum to the splits keeps every label's positives spread over them in proportion
    (the rarest labels exactly; a simplification of the iterative stratification of
    Sechidis et al., ECML PKDD 2011).

    Parameters
    ----------
    labels : array_like, shape (n,), (n, 1) or (n, n_labels)
    min_count : int, optional
        Smallest multi-label stratum kept on its own.

    Returns
    -------
    ndarray of int64, shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([[0, 0], [1, 0], [1, 1], [1, 0], [0, 1]])
    >>> label_strata(y, min_count=1).tolist()        # label 1 is the rarer (2 against 3)
    [0, 1, 2, 1, 2]
    >>> label_strata([0, 1, 1]).tolist()
    [0, 1, 1]
    """
    y = _as_labels(labels, "label_strata")
    if y.ndim == 1:
        return y
    counts = y.sum(axis=0)
    rank = np.argsort(counts, kind="stable")               # rarest label first
    key = np.zeros(y.shape[0], dtype=np.int64)
    for k in rank[::-1]:                                   # rarer labels overwrite commoner
        key[y[:, k] == 1] = k + 1
    sizes = np.bincount(key)
    small = (sizes > 0) & (sizes < int(min_count))
    if small.any():
        largest = int(np.argmax(sizes))
        key[small[key]] = largest
    return key


def resize_images(images, size, *, anti_aliasing=True):
    """A stack of 2-D images resized to ``size`` x ``size`` (or ``(height, width)``).

    Bilinear interpolation with scikit-image's Gaussian anti-aliasing when shrinking
    (:func:`skimage.transform.resize`), on float64; the result keeps the input's dtype
    (integers rounded and clipped to their range). Colour images ``(n, H, W, C)`` keep their
    channels. Images already of that size are returned as they are.

    Parameters
    ----------
    images : ndarray, shape (n, H, W) or (n, H, W, C)
    size : int or (int, int)
    anti_aliasing : bool, optional

    Returns
    -------
    ndarray, shape (n, size, size[, C])

    Raises
    ------
    ValueError
        A ``size`` that is not a positive integer (or pair), or images that are not a stack
        of 2-D images.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((2, 28, 28), np.uint8); x[:, 10:18, 10:18] = 200
    >>> y = resize_images(x, 64)
    >>> y.shape, y.dtype, int(y[0, 32, 32])
    ((2, 64, 64), dtype('uint8'), 200)
    """
    from skimage.transform import resize

    shape = (size, size) if np.ndim(size) == 0 else tuple(size)
    if len(shape) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer))
                              or v < 1 for v in shape):
        raise ValueError(f"size must be a positive integer or a pair of them, got {size!r}")
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must be a stack of 2-D images (n, H, W) or (n, H, W, C), got "
                         f"shape {images.shape}")
    if tuple(images.shape[1:3]) == shape:
        return images
    out_shape = shape + tuple(images.shape[3:])
    out = np.empty((images.shape[0],) + out_shape, dtype=np.float64)
    for i, img in enumerate(images):
        out[i] = resize(img.astype(np.float64), out_shape, order=1, mode="reflect",
                        anti_aliasing=anti_aliasing and any(
                            a > b for a, b in zip(img.shape[:2], shape)),
                        preserve_range=True)
    if images.dtype.kind in "iu":
        info = np.iinfo(images.dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(images.dtype)
    if images.dtype == np.bool_:
        return out >= 0.5
    return out.astype(images.dtype)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Train, validation and test splits of one classification task.

    Parameters
    ----------
    train, val, test : Split or (images, labels)
        Images ``(n, ...)`` of one shape and dtype per dataset; labels ``(n,)`` or ``(n, 1)``
        integers in ``range(len(classes))``, or for a multi-label task (several independent
        findings per image, e.g. ChestMNIST's 14) a 0/1 matrix ``(n, len(classes))`` in every
        split.
    classes : sequence of str
        Class names; label ``k`` means ``classes[k]`` (multi-label: column ``k`` is finding
        ``classes[k]``).
    name : str, optional
    synthetic : array_like of bool, shape (n_train,), optional
        True for training rows that are generated rather than real (e.g. by
        :func:`medfeat.deep.gan.expand`); None (the default) means all are real. Validation and
        test splits are always real.

    Examples
    --------
    >>> import numpy as np
    >>> x, y = np.zeros((10, 4, 4), np.uint8), np.array([0, 1] * 5)
    >>> ds = Dataset((x[:6], y[:6]), (x[6:8], y[6:8]), (x[8:], y[8:]), ("no", "yes"), "toy")
    >>> ds.train.images.shape, ds.n_classes, ds.sizes
    ((6, 4, 4), 2, (6, 2, 2))
    >>> Y = np.array([[0, 1, 1], [1, 0, 0]] * 5)
    >>> ml = Dataset((x[:6], Y[:6]), (x[6:8], Y[6:8]), (x[8:], Y[8:]), ("a", "b", "c"))
    >>> ml.multilabel, ml.train.labels.shape
    (True, (6, 3))
    """

    train: Split
    val: Split
    test: Split
    classes: tuple
    name: str = ""
    synthetic: np.ndarray | None = None

    def __post_init__(self):
        classes = tuple(str(c) for c in self.classes)
        if len(classes) < 2:
            raise ValueError(f"dataset {self.name!r}: needs at least two classes, got {classes}")
        object.__setattr__(self, "classes", classes)
        shape = None
        ranks = set()
        for part in ("train", "val", "test"):
            value = getattr(self, part)
            try:
                images, labels = value
            except (TypeError, ValueError) as exc:
                raise ValueError(f"dataset {self.name!r}: {part} must be (images, labels)") \
                    from exc
            images = np.asarray(images)
            labels = _as_labels(labels, f"dataset {self.name!r} {part}")
            if images.ndim < 2 or images.shape[0] != labels.shape[0]:
                count = images.shape[0] if images.ndim else 0
                raise ValueError(f"dataset {self.name!r} {part}: {count} images but "
                                 f"{labels.shape[0]} labels (images {images.shape})")
            if labels.shape[0]:
                ranks.add(labels.ndim)
            if len(ranks) > 1:
                raise ValueError(f"dataset {self.name!r} {part}: multi-label labels (n, "
                                 f"n_labels) in some splits and class labels (n,) in others")
            if labels.ndim == 2 and labels.shape[1] != len(classes):
                raise ValueError(f"dataset {self.name!r} {part}: {labels.shape[1]} multi-label "
                                 f"columns but {len(classes)} classes (one name per finding)")
            if labels.ndim == 1 and labels.size and labels.max() >= len(classes):
                raise ValueError(f"dataset {self.name!r} {part}: label {labels.max()} but only "
                                 f"{len(classes)} classes")
            if shape is None:
                shape = images.shape[1:]
            elif images.shape[1:] != shape and images.shape[0]:
                raise ValueError(f"dataset {self.name!r} {part}: image shape {images.shape[1:]} "
                                 f"differs from {shape}")
            object.__setattr__(self, part, Split(images, labels))
        if self.synthetic is not None:
            mask = np.asarray(self.synthetic)
            if mask.dtype != np.bool_ or mask.shape != self.train.labels.shape:
                raise ValueError(f"dataset {self.name!r}: synthetic must be a boolean mask of "
                                 f"the {self.train.labels.shape[0]} training rows, got dtype "
                                 f"{mask.dtype} and shape {mask.shape}")
            object.__setattr__(self, "synthetic", mask)

    @property
    def n_classes(self):
        """Number of classes (of findings, for a multi-label task)."""
        return len(self.classes)

    @property
    def multilabel(self):
        """True when the labels are 0/1 matrices ``(n, n_labels)`` (several findings per image)."""
        return self.train.labels.ndim == 2

    def resized(self, size, *, anti_aliasing=True):
        """This dataset with every split's 2-D images resized by :func:`resize_images`.

        Examples
        --------
        >>> ds = make_phantoms(n=40, size=32, seed=0).resized(48)
        >>> ds.train.images.shape[1:], ds.name
        ((48, 48), 'phantoms')
        """
        parts = {}
        for part in ("train", "val", "test"):
            split = getattr(self, part)
            images = split.images
            if images.shape[0]:
                images = resize_images(images, size, anti_aliasing=anti_aliasing)
            else:
                shape = (size, size) if np.ndim(size) == 0 else tuple(size)
                images = np.zeros((0,) + shape + tuple(images.shape[3:]), images.dtype)
            parts[part] = Split(images, split.labels)
        return dataclasses.replace(self, **parts)

    @property
    def sizes(self):
        """``(n_train, n_val, n_test)``."""
        return tuple(len(s.labels) for s in (self.train, self.val, self.test))

    @classmethod
    def from_arrays(cls, images, labels, *, classes=None, name="", val_size=0.15, test_size=0.15,
                    seed=0):
        """One pool of images split by :func:`stratified_split`.

        Examples
        --------
        >>> import numpy as np
        >>> ds = Dataset.from_arrays(np.zeros((40, 8, 8)), np.arange(40) % 2, seed=1)
        >>> ds.sizes, ds.classes
        ((28, 6, 6), ('0', '1'))
        """
        images = np.asarray(images)
        labels = _as_labels(labels, f"dataset {name!r}")
        if images.ndim < 2 or images.shape[0] != labels.shape[0]:
            raise ValueError(f"dataset {name!r}: {len(images)} images but {len(labels)} labels")
        if classes is None and labels.ndim == 2:
            classes = tuple(str(k) for k in range(labels.shape[1]))
        elif classes is None:
            classes = tuple(str(k) for k in range(int(labels.max()) + 1 if labels.size else 0))
        tr, va, te = stratified_split(labels, val_size=val_size, test_size=test_size, seed=seed)
        return cls((images[tr], labels[tr]), (images[va], labels[va]), (images[te], labels[te]),
                   classes, name)


def stratified_split(labels, *, val_size=0.15, test_size=0.15, seed=0):
    """Indices of a train/validation/test split that keeps the class proportions.

    Each class is shuffled with ``seed`` and ``round(val_size·n_c)`` of its ``n_c`` samples go to
    validation, ``round(test_size·n_c)`` to test (at least one each when the size is not 0, so
    every class is in every split), the rest to training. Multi-label labels ``(n, L)`` are
    stratified by :func:`label_strata` (each row's rarest positive label).

    Parameters
    ----------
    labels : array_like, shape (n,), (n, 1) or (n, n_labels)
    val_size, test_size : float, optional
        Fractions in [0, 1); their sum must be below 1. A size of 0 gives an empty split.
    seed : int, optional

    Returns
    -------
    train, val, test : ndarray of int64
        Indices into ``labels``, shuffled.

    Raises
    ------
    ValueError
        Fewer than two classes, bad fractions, or a class too small to leave a training sample.

    Examples
    --------
    >>> import numpy as np
    >>> tr, va, te = stratified_split(np.array([0] * 8 + [1] * 12), val_size=0.25, test_size=0.25)
    >>> len(tr), len(va), len(te)
    (10, 5, 5)
    """
    labels = label_strata(labels)
    for nm, v in (("val_size", val_size), ("test_size", test_size)):
        if not (isinstance(v, (int, float, np.floating)) and 0 <= v < 1):
            raise ValueError(f"{nm} must be a fraction in [0, 1), got {v!r}")
    if val_size + test_size >= 1:
        raise ValueError(f"val_size + test_size must be below 1, got {val_size + test_size}")
    classes = np.unique(labels)
    if classes.size < 2:
        raise ValueError(f"stratified_split needs at least two classes, got {classes.tolist()}")
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for c in classes:
        idx = rng.permutation(np.flatnonzero(labels == c))
        # every class appears in every split that is asked for
        n_val = max(1, int(round(val_size * idx.size))) if val_size > 0 else 0
        n_test = max(1, int(round(test_size * idx.size))) if test_size > 0 else 0
        if n_val + n_test >= idx.size:
            raise ValueError(f"class {c} has {idx.size} sample(s): too few for val_size={val_size}"
                             f" and test_size={test_size}")
        parts[1].append(idx[:n_val])
        parts[2].append(idx[n_val:n_val + n_test])
        parts[0].append(idx[n_val + n_test:])
    return tuple(rng.permutation(np.concatenate(p)).astype(np.int64) for p in parts)


# --------------------------------------------------------------------------------------------
# .npz (the MedMNIST layout)


def load_npz(path, *, name=None, classes=None, val_size=0.15, test_size=0.15, seed=0):
    """Load a dataset stored as ``.npz`` in the MedMNIST layout.

    Parameters
    ----------
    path : str or os.PathLike
        Holds ``train_images`` and ``train_labels``, and usually ``val_*`` and ``test_*``; labels
        ``(n,)`` or ``(n, 1)``, or 0/1 ``(n, n_labels)`` for a multi-label task (ChestMNIST).
    name : str, optional
        Default: the file name without ``.npz``.
    classes : sequence of str, optional
        Default: ``"0"``, ``"1"``, ... up to the largest label.
    val_size, test_size, seed : optional
        Used only for the splits the file lacks: they are carved out of ``train`` by
        :func:`stratified_split` (``val_size`` and ``test_size`` as fractions of it).

    Returns
    -------
    Dataset
        Images as stored: ``(n, H, W)`` grey, ``(n, H, W, 3)`` colour, or ``(n, D, H, W)``
        volumes (the MedMNIST 3-D sets, e.g. AdrenalMNIST3D's ``(n, 28, 28, 28)``).

    Raises
    ------
    ImageReadError
        Missing, not a zip/npz, truncated, missing keys, mismatched counts, multi-label labels
        that are not 0/1 or differ in width between splits.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.npz")
    >>> x, y = np.zeros((20, 4, 4), np.uint8), (np.arange(20) % 2).reshape(-1, 1)
    >>> np.savez(path, train_images=x, train_labels=y, test_images=x[:4], test_labels=y[:4])
    >>> ds = load_npz(path, val_size=0.2)
    >>> ds.name, ds.sizes
    ('toy', (16, 4, 4))
    """
    path = check_file(path)
    if name is None:
        name = os.path.splitext(os.path.basename(path))[0]
    try:
        # our own handle: np.load leaks its file when the archive is corrupt
        with open(path, "rb") as fh:
            npz = np.load(fh, allow_pickle=False)
            if not hasattr(npz, "files"):
                raise ImageReadError(path, "holds a single array, not the .npz layout "
                                           "{train,val,test}_{images,labels}")
            with npz:
                arrays = {k: npz[k] for k in npz.files}
    except ImageReadError:
        raise
    except Exception as exc:  # BadZipFile, EOFError, ValueError (pickled objects), OSError ...
        raise ImageReadError(path, f"cannot read the .npz file ({type(exc).__name__}: {exc})") \
            from exc
    if "train_images" not in arrays or "train_labels" not in arrays:
        raise ImageReadError(path, f"no train_images/train_labels (keys: {sorted(arrays)})")
    splits = {}
    for part in ("train", "val", "test"):
        ki, kl = f"{part}_images", f"{part}_labels"
        if (ki in arrays) != (kl in arrays):
            raise ImageReadError(path, f"has {ki if ki in arrays else kl} without its pair")
        if ki not in arrays:
            continue
        images = arrays[ki]
        try:
            labels = _as_labels(arrays[kl], kl)
        except ValueError as exc:
            raise ImageReadError(path, str(exc)) from exc
        if images.ndim < 2 or images.shape[0] != labels.shape[0]:
            raise ImageReadError(path, f"{ki} has shape {images.shape} but {kl} has "
                                       f"{labels.shape[0]} labels")
        splits[part] = (images, labels)
    missing = [p for p in ("val", "test") if p not in splits]
    if missing:
        images, labels = splits["train"]
        sizes = {"val_size": val_size if "val" in missing else 0.0,
                 "test_size": test_size if "test" in missing else 0.0}
        tr, va, te = stratified_split(labels, seed=seed, **sizes)
        splits["train"] = (images[tr], labels[tr])
        if "val" in missing:
            splits["val"] = (images[va], labels[va])
        if "test" in missing:
            splits["test"] = (images[te], labels[te])
    if classes is None and splits["train"][1].ndim == 2:
        classes = tuple(str(k) for k in range(splits["train"][1].shape[1]))
    elif classes is None:
        top = max(int(lab.max()) for _, lab in splits.values() if lab.size and lab.ndim == 1)
        classes = tuple(str(k) for k in range(top + 1))
    try:
        return Dataset(splits["train"], splits["val"], splits["test"], classes, name)
    except ValueError as exc:
        raise ImageReadError(path, str(exc)) from exc


# --------------------------------------------------------------------------------------------
# image folders


class ImageFolder:
    """Images in one sub-folder per class, read lazily (one at a time, or all in parallel).

    ``root/<class>/<file>``: classes are the sub-folder names, sorted; hidden files and folders
    are skipped, files directly under ``root`` are ignored. Every other file must be an image
    :func:`medfeat.io.read_image` can read (pass ``extensions`` to select files by name).

    Parameters
    ----------
    root : str or os.PathLike
    extensions : sequence of str, optional
        Only files whose names end with one of these (case-insensitive), e.g. ``(".png",)``.

    Attributes
    ----------
    classes : tuple of str
    paths : list of str
    labels : ndarray of int64

    Raises
    ------
    ImageReadError
        Missing root, no class folders, an empty class folder, or a single class.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> for c in ("cat", "dog"):
    ...     os.mkdir(os.path.join(root, c))
    ...     for i in range(10):
    ...         img = np.full((8, 8), 20 * i, np.uint8)
    ...         Image.fromarray(img).save(os.path.join(root, c, f"{i}.png"))
    >>> folder = ImageFolder(root)
    >>> len(folder), folder.classes
    (20, ('cat', 'dog'))
    >>> images, labels = folder.load(progress=False)
    >>> images.shape, labels[:3].tolist()
    ((20, 8, 8), [0, 0, 0])
    >>> folder.to_dataset(val_size=0.2, test_size=0.2, progress=False).sizes
    (12, 4, 4)
    """

    def __init__(self, root, *, extensions=None):
        self.root = check_folder(root)
        exts = tuple(e.lower() for e in extensions) if extensions else None
        classes = sorted(d for d in os.listdir(self.root)
                         if not d.startswith(".") and os.path.isdir(os.path.join(self.root, d)))
        if not classes:
            raise ImageReadError(self.root, "no class sub-folders (expected root/<class>/<image>)")
        if len(classes) < 2:
            raise ImageReadError(self.root, f"only one class folder {classes}: a classifier "
                                            "needs at least two")
        self.classes = tuple(classes)
        self.paths, labels = [], []
        for k, c in enumerate(classes):
            folder = os.path.join(self.root, c)
            files = sorted(f for f in os.listdir(folder)
                           if not f.startswith(".") and os.path.isfile(os.path.join(folder, f))
                           and (exts is None or f.lower().endswith(exts)))
            if not files:
                raise ImageReadError(folder, f"class folder {c!r} holds no image files")
            self.paths += [os.path.join(folder, f) for f in files]
            labels += [k] * len(files)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        """``(image, label)`` of file ``i``, read now."""
        from .images import read_image

        return read_image(self.paths[i]), int(self.labels[i])

    def __repr__(self):
        return f"ImageFolder({self.root!r}: {len(self)} images, classes={self.classes})"

    def load(self, *, workers=None, progress=True):
        """Read every image, in parallel threads, into one array.

        Parameters
        ----------
        workers : int, optional
            Threads (default: the CPU count, at most 8). The decoders release the GIL.
        progress : bool, optional
            Show a tqdm progress bar on stderr.

        Returns
        -------
        images : ndarray, shape (n, ...)
        labels : ndarray of int64, shape (n,)

        Raises
        ------
        ImageReadError
            An unreadable file, or images of different shapes or dtypes (naming the first file
            that differs).
        """
        from concurrent.futures import ThreadPoolExecutor

        from tqdm.auto import tqdm

        from .images import read_image

        if workers is None:
            workers = min(8, os.cpu_count() or 1)
        if int(workers) < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        with ThreadPoolExecutor(max_workers=int(workers)) as pool:
            it = pool.map(read_image, self.paths)
            images = list(tqdm(it, total=len(self.paths), desc=os.path.basename(self.root),
                               unit="img", disable=not progress))
        first = images[0]
        for p, img in zip(self.paths, images):
            if img.shape != first.shape or img.dtype != first.dtype:
                raise ImageReadError(p, f"image {img.shape} {img.dtype} differs from "
                                        f"{first.shape} {first.dtype} of {self.paths[0]!r}; "
                                        "resize the images to one shape first")
        return np.stack(images), self.labels.copy()

    def to_dataset(self, *, val_size=0.15, test_size=0.15, seed=0, name=None, workers=None,
                   progress=True):
        """All images as a :class:`Dataset`, split by :func:`stratified_split`."""
        images, labels = self.load(workers=workers, progress=progress)
        return Dataset.from_arrays(images, labels, classes=self.classes,
                                   name=name or os.path.basename(os.path.normpath(self.root)),
                                   val_size=val_size, test_size=test_size, seed=seed)


# --------------------------------------------------------------------------------------------
# folders of DICOM series (volumes)

#: Column names of a series labels CSV (case-insensitive): the sub-folder, and the label.
_SERIES_COLUMNS = ("folder", "series", "study", "file", "filename", "path", "image", "id")
_LABEL_COLUMNS = ("label", "class", "target", "diagnosis")


def _subfolders(folder):
    return sorted(d for d in os.listdir(folder)
                  if not d.startswith(".") and os.path.isdir(os.path.join(folder, d)))


def _holds_dicom(folder):
    """True when the first regular file of ``folder`` (by name) is a DICOM file."""
    from .dicom import is_dicom

    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not name.startswith(".") and name != "DICOMDIR" and os.path.isfile(path):
            return is_dicom(path)
    return False


def _read_series_csv(path):
    """``[(sub-folder, label text), ...]`` from a CSV with a folder and a label column (by
    name, or the first two columns of a file without known names)."""
    import csv

    with open(path, newline="", encoding="utf-8-sig") as fh:
        sample = fh.read(4096)
        fh.seek(0)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        rows = [r for r in csv.reader(fh, dialect) if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise ImageReadError(path, "the labels CSV needs a header and at least one row")
    header = [c.strip().lower() for c in rows[0]]
    fcol = next((header.index(c) for c in _SERIES_COLUMNS if c in header), None)
    lcol = next((header.index(c) for c in _LABEL_COLUMNS if c in header), None)
    if fcol is None or lcol is None:
        if len(header) != 2:
            raise ImageReadError(path, f"needs a folder column ({'/'.join(_SERIES_COLUMNS)}) and "
                                       f"a label column ({'/'.join(_LABEL_COLUMNS)}); found "
                                       f"{rows[0]}")
        fcol, lcol = 0, 1
    out = []
    for k, row in enumerate(rows[1:], start=2):
        if len(row) <= max(fcol, lcol) or not row[fcol].strip() or not row[lcol].strip():
            raise ImageReadError(path, f"line {k}: empty folder or label")
        out.append((row[fcol].strip().strip("/\\"), row[lcol].strip()))
    return out


def _series_entries(root, labels_csv):
    """``[(study folder, label text), ...]`` for either layout (see :func:`load_series_folder`)."""
    if labels_csv is None:
        default = os.path.join(root, "labels.csv")
        labels_csv = default if os.path.isfile(default) else None
    if labels_csv is not None:
        labels_csv = check_file(labels_csv)
        entries = []
        for sub, label in _read_series_csv(labels_csv):
            folder = os.path.join(root, sub)
            if not os.path.isdir(folder):
                raise ImageReadError(labels_csv, f"lists {sub!r}, which is not a sub-folder of "
                                                 f"{root!r}")
            entries.append((folder, label))
        return entries
    entries = []
    for cls in _subfolders(root):
        studies = _subfolders(os.path.join(root, cls))
        if not studies:
            raise ImageReadError(os.path.join(root, cls), "class folder holds no series "
                                 "folders (expected root/<class>/<series>/<slices>, or a "
                                 "labels.csv mapping root/<series> to labels)")
        entries += [(os.path.join(root, cls, st), cls) for st in studies]
    if not entries:
        raise ImageReadError(root, "no series sub-folders")
    return entries


def is_series_folder(root, labels_csv=None):
    """True when ``root`` is laid out as :func:`load_series_folder` reads it.

    That is: a labels CSV (``labels_csv``, or ``root/labels.csv``) whose folder column names
    sub-folders of ``root`` that hold DICOM files; or, without a CSV, class sub-folders that
    hold only series sub-folders of DICOM files. A folder of DICOM images sorted into class
    folders (:class:`ImageFolder`) is not one. Only the first file of each folder is opened.

    Examples
    --------
    >>> import tempfile
    >>> is_series_folder(tempfile.mkdtemp())
    False
    """
    try:
        root = check_folder(root)
        if labels_csv is None and not os.path.isfile(os.path.join(root, "labels.csv")):
            for cls in _subfolders(root):
                files = [f for f in os.listdir(os.path.join(root, cls))
                         if not f.startswith(".") and os.path.isfile(os.path.join(root, cls, f))]
                if files:
                    return False
        entries = _series_entries(root, labels_csv)
    except (ImageReadError, OSError, UnicodeDecodeError):
        return False
    return bool(entries) and all(_holds_dicom(folder) for folder, _ in entries)


def load_series_folder(root, labels_csv=None, *, shape=None, order=1, window=None,
                       classes=None, name=None, val_size=0.15, test_size=0.15, seed=0,
                       progress=True):
    """Volumes from a folder of DICOM series, one study per sub-folder, as a :class:`Dataset`.

    Two layouts: ``root/<series>/<slices>`` with a labels CSV mapping each sub-folder to its
    label (``labels_csv``, or ``root/labels.csv``; columns ``folder``/``series``/``study``/...
    and ``label``/``class``/..., or just two columns), or without a CSV
    ``root/<class>/<series>/<slices>``. Each series is read by :func:`medfeat.io.read_series`
    (modality values, slices sorted along the slice normal) and, when ``shape`` is given,
    resampled to it with :func:`scipy.ndimage.zoom` (spline ``order``, default 1: trilinear;
    border mode ``"nearest"``). The volumes are then split by :func:`stratified_split`.

    Parameters
    ----------
    root : str or os.PathLike
    labels_csv : str or os.PathLike, optional
    shape : (int, int, int), optional
        ``(depth, height, width)`` every volume is resampled to. Without it all series must
        have one shape.
    order : int, optional
        Spline order of the resampling (0 nearest, 1 trilinear, 3 cubic).
    window : None, "auto" or (float, float), optional
        As in :func:`medfeat.io.read_dicom` (None: modality values, e.g. Hounsfield units).
    classes : sequence of str, optional
        Class names for integer labels; text labels become classes in sorted order.
    name : str, optional
        Default: the folder's name.
    val_size, test_size, seed : optional
        As in :func:`stratified_split`.
    progress : bool, optional
        A tqdm progress bar on stderr.

    Returns
    -------
    Dataset
        Images ``(n, D, H, W)`` float32.

    Raises
    ------
    ImageReadError
        No series, a CSV naming a missing sub-folder or without the needed columns, an
        unreadable series, or series of different shapes without ``shape``.
    ValueError
        A bad ``shape`` or ``order``.

    Examples
    --------
    >>> import shutil, tempfile
    >>> import numpy as np, pydicom, pydicom.uid
    >>> from pydicom.data import get_testdata_file
    >>> root = tempfile.mkdtemp()
    >>> rows = ["folder,label"]
    >>> for s in range(8):
    ...     os.mkdir(os.path.join(root, f"s{s}"))
    ...     uid = pydicom.uid.generate_uid()
    ...     for k in range(3):
    ...         ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ...         ds.ImagePositionPatient = [0.0, 0.0, 2.5 * k]
    ...         ds.SeriesInstanceUID, ds.SOPInstanceUID = uid, pydicom.uid.generate_uid()
    ...         ds.save_as(os.path.join(root, f"s{s}", f"{k}.dcm"))
    ...     rows.append(f"s{s},{'mass' if s % 2 else 'normal'}")
    >>> with open(os.path.join(root, "labels.csv"), "w") as fh:
    ...     _ = fh.write("\\n".join(rows))
    >>> ds = load_series_folder(root, shape=(4, 32, 32), val_size=0.25, test_size=0.25,
    ...                         progress=False)
    >>> ds.train.images.shape, ds.classes
    ((4, 4, 32, 32), ('mass', 'normal'))
    >>> shutil.rmtree(root)
    """
    from .dicom import read_series

    root = check_folder(root)
    if shape is not None:
        try:
            shape = tuple(int(v) for v in shape)
            ok = len(shape) == 3 and all(v >= 1 for v in shape)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"shape must be (depth, height, width) of positive integers, got "
                             f"{shape!r}")
    if isinstance(order, bool) or order not in (0, 1, 2, 3, 4, 5):
        raise ValueError(f"order must be a spline order 0..5, got {order!r}")
    entries = _series_entries(root, labels_csv)
    from tqdm.auto import tqdm

    volumes = []
    for folder, _ in tqdm(entries, desc=os.path.basename(root), unit="series",
                          disable=not progress):
        vol, _ = read_series(folder, window=window)
        if shape is not None and vol.shape != shape:
            vol = _resample(vol, shape, order)
        volumes.append(vol.astype(np.float32, copy=False))
    shapes = {}
    for (folder, _), vol in zip(entries, volumes):
        shapes.setdefault(vol.shape, os.path.relpath(folder, root))
    if len(shapes) > 1:
        seen = ", ".join(f"{s} ({f!r})" for s, f in shapes.items())
        raise ImageReadError(root, f"series of different shapes: {seen}; pass shape=(depth, "
                                   "height, width) to resample them to one")
    texts = [label for _, label in entries]
    if all(t.lstrip("-").isdigit() for t in texts):
        labels = np.array([int(t) for t in texts], dtype=np.int64)
    else:
        names = sorted(set(texts))
        if classes is None:
            classes = tuple(names)
        elif sorted(classes) != names:
            raise ImageReadError(root, f"labels {names} do not match classes {list(classes)}")
        index = {c: k for k, c in enumerate(classes)}
        labels = np.array([index[t] for t in texts], dtype=np.int64)
    try:
        return Dataset.from_arrays(np.stack(volumes), labels, classes=classes,
                                   name=name or os.path.basename(os.path.normpath(root)),
                                   val_size=val_size, test_size=test_size, seed=seed)
    except ValueError as exc:
        raise ImageReadError(root, str(exc)) from exc


def _resample(volume, shape, order):
    """``volume`` resampled to ``shape`` by :func:`scipy.ndimage.zoom`."""
    from scipy import ndimage

    factors = [t / s for t, s in zip(shape, volume.shape)]
    out = ndimage.zoom(volume.astype(np.float32, copy=False), factors, order=order,
                       mode="nearest")
    if out.shape != shape:  # zoom rounds each output side; never more than one voxel off
        out = out[tuple(slice(0, t) for t in shape)]
        out = np.pad(out, [(0, t - s) for t, s in zip(shape, out.shape)], mode="edge")
    return out


# --------------------------------------------------------------------------------------------
# MedMNIST


def default_cache():
    """Where :func:`load_medmnist` keeps files: ``$MEDFEAT_DATA_DIR``, else
    ``~/.cache/medfeat/medmnist``.

    Examples
    --------
    >>> import os
    >>> os.environ["MEDFEAT_DATA_DIR"] = "/data/medmnist"
    >>> default_cache()
    '/data/medmnist'
    >>> del os.environ["MEDFEAT_DATA_DIR"]
    >>> default_cache().endswith(os.path.join(".cache", "medfeat", "medmnist"))
    True
    """
    env = os.environ.get("MEDFEAT_DATA_DIR")
    if env:
        return env
    return os.path.join(os.path.expanduser("~"), ".cache", "medfeat", "medmnist")


def _md5(path):
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(url, dest, md5, timeout):
    """``url`` → ``dest`` through a temporary file renamed into place once its MD5 matches."""
    import urllib.error
    import urllib.request

    folder = os.path.dirname(dest)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(dest) + ".",
                               suffix=".part")
    try:
        h = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    for chunk in iter(lambda: resp.read(1 << 20), b""):
                        h.update(chunk)
                        out.write(chunk)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", exc)
                raise DownloadError(f"cannot download {url} ({reason}); are we offline? Place "
                                    f"the file at {dest} by hand to use it") from exc
        got = h.hexdigest()
        if got != md5:
            raise DownloadError(f"{url}: MD5 {got} does not match the published {md5}; nothing "
                                "was saved")
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_medmnist(name, *, size=28, root=None, download=True, timeout=30.0, url=None, md5=None):
    """A MedMNIST v2 (or MedMNIST+, for sizes 64, 128, 224) 2-D dataset, from the cache or the web.

    The file is looked for in ``root``; when absent it is downloaded from Zenodo (record
    10519652, the URLs of the official ``medmnist`` package), its MD5 checked against the published
    value and only then moved into place. A cached file is checked too.

    Parameters
    ----------
    name : str
        E.g. ``"pneumoniamnist"``, ``"breastmnist"``, ``"dermamnist"``, ``"bloodmnist"``
        (the 2-D sets; ChestMNIST is multi-label, which :func:`load_npz` refuses).
    size : {28, 64, 128, 224}, optional
    root : str or os.PathLike, optional
        Cache folder; default :func:`default_cache`.
    download : bool, optional
        ``False``: never go online; a missing file is an error.
    timeout : float, optional
        Seconds to wait for the server on each network operation, so an offline machine fails
        quickly instead of hanging.
    url, md5 : str, optional
        Another source and its checksum (a mirror, or a ``file://`` URL).

    Returns
    -------
    Dataset
        Named ``name`` (with ``_<size>`` for the larger sizes), classes from the MedMNIST labels.

    Raises
    ------
    ValueError
        Unknown name or size.
    DownloadError
        Offline, server error, or a checksum that does not match (of a download or of the
        cached file, which is then left untouched for you to inspect).
    ImageReadError
        The file cannot be read as a dataset.

    Examples
    --------
    >>> import hashlib, os, tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> src = os.path.join(tempfile.mkdtemp(), "mirror.npz")
    >>> x, y = np.zeros((30, 28, 28), np.uint8), np.arange(30).reshape(-1, 1) % 2
    >>> np.savez(src, train_images=x, train_labels=y, val_images=x[:4], val_labels=y[:4],
    ...          test_images=x[:6], test_labels=y[:6])
    >>> digest = hashlib.md5(Path(src).read_bytes()).hexdigest()
    >>> ds = load_medmnist("pneumoniamnist", root=tempfile.mkdtemp(), url="file://" + src,
    ...                    md5=digest)
    >>> ds.classes, ds.sizes
    (('normal', 'pneumonia'), (30, 4, 6))
    """
    from . import medmnist

    key = str(name).lower()
    if key not in medmnist.INFO:
        raise ValueError(f"unknown MedMNIST dataset {name!r}; known: {sorted(medmnist.INFO)}")
    if size not in medmnist.SIZES:
        raise ValueError(f"size must be one of {medmnist.SIZES}, got {size!r}")
    md5s, labels, _, _, _ = medmnist.INFO[key]
    stem = medmnist.file_stem(key, size)
    expected = (md5 or md5s[medmnist.SIZES.index(size)]).lower()
    folder = os.fspath(root) if root is not None else default_cache()
    dest = os.path.join(folder, stem + ".npz")
    if os.path.isfile(dest):
        got = _md5(dest)
        if got != expected:
            raise DownloadError(f"{dest}: MD5 {got} does not match the published {expected}; "
                                "the file is left as it is — delete it to download again")
    elif not download:
        raise DownloadError(f"{dest} is not in the cache and download=False")
    else:
        _download(url or medmnist.URL.format(stem=stem), dest, expected, timeout)
    return load_npz(dest, name=stem, classes=labels)


# --------------------------------------------------------------------------------------------
# phantoms


def make_phantoms(n=2000, size=64, seed=0, *, val_size=0.15, test_size=0.15):
    """The embedded default dataset: CT-like slices, half with a small low-contrast lesion.

    Each slice is an axial abdomen drawn in Hounsfield units: a body outline with a fat layer,
    liver, spleen, kidneys, aorta, spine and fluid- or gas-filled bowel as ellipses of different
    attenuation, blurred by a point-spread function, with correlated ("textured") and white noise,
    stored through an abdominal window (centre 50, width 350 HU) as uint8. Exactly half of the
    slices (label 1, ``"lesion"``) carry one lesion inside the liver or spleen: an ellipse of
    random size (2 to 4 pixels radius at ``size=64``), elongation, orientation and position,
    40 to 70 HU darker (60 %) or brighter than the organ. The anatomy varies far more from slice
    to slice than the lesion changes a slice, so a kNN on raw pixels stays near chance, while a
    lesion-scale local-contrast detector finds most lesions.

    Parameters
    ----------
    n : int, optional
        Number of slices (at least 20).
    size : int, optional
        Side in pixels (at least 32); the anatomy, blur and lesions scale with it.
    seed : int, optional
        Everything random derives from it: same seed, same dataset.
    val_size, test_size : float, optional
        Fractions for :func:`stratified_split`.

    Returns
    -------
    Dataset
        uint8 images ``(n_split, size, size)``, classes ``("normal", "lesion")``, name
        ``"phantoms"``.

    Examples
    --------
    >>> ds = make_phantoms(n=100, size=32, seed=3)
    >>> ds.sizes, ds.train.images.dtype
    ((68, 16, 16), dtype('uint8'))
    >>> int(sum(s.labels.sum() for s in (ds.train, ds.val, ds.test)))
    50
    """
    from ._phantoms import make_slices

    for nm, v, lo in (("n", n, 20), ("size", size, 32)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{nm} must be an integer >= {lo}, got {v!r}")
    images, labels, _ = make_slices(int(n), int(size), seed)
    return Dataset.from_arrays(images, labels, classes=("normal", "lesion"), name="phantoms",
                               val_size=val_size, test_size=test_size, seed=seed)


def make_phantom_volumes(n=200, shape=(16, 48, 48), seed=0, *, val_size=0.15, test_size=0.15):
    """CT-like synthetic volumes, half with a small ellipsoid lesion: the 3-D twin of
    :func:`make_phantoms`.

    Each volume is a stack of axial slices of one abdomen (the anatomy of :func:`make_phantoms`,
    its cross-section shrinking by up to 15 % towards both ends, so organs continue from slice to
    slice), blurred and given correlated noise in 3-D, stored through the same abdominal window as
    uint8. Exactly half (label 1, ``"lesion"``) carry one ellipsoid lesion inside the liver or
    spleen near the middle slices, 40 to 70 HU darker or brighter than the organ, 2 to 4 pixels
    in radius at 64 px across and a few slices high. A volume dataset of any shape for checking
    the 3-D roads on data other than AdrenalMNIST3D.

    Parameters
    ----------
    n : int, optional
        Number of volumes (at least 20).
    shape : tuple of int, optional
        ``(depth, height, width)``: depth at least 4, square slices of at least 24 pixels.
    seed : int, optional
        Everything random derives from it: same seed, same dataset.
    val_size, test_size : float, optional
        Fractions for :func:`stratified_split`.

    Returns
    -------
    Dataset
        uint8 volumes ``(n_split, depth, height, width)``, classes ``("normal", "lesion")``, name
        ``"phantom-volumes"``.

    Examples
    --------
    >>> ds = make_phantom_volumes(n=20, shape=(6, 24, 24), seed=1)
    >>> ds.train.images.shape[1:], ds.train.images.dtype, sum(ds.sizes)
    ((6, 24, 24), dtype('uint8'), 20)
    """
    from ._phantoms import make_volumes

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 20:
        raise ValueError(f"n must be an integer >= 20, got {n!r}")
    try:
        dims = tuple(int(v) for v in shape)
        ok = len(dims) == 3 and all(not isinstance(v, bool) and int(v) == v for v in shape)
    except (TypeError, ValueError):
        ok = False
    if not ok or dims[0] < 4 or dims[1] < 24 or dims[1] != dims[2]:
        raise ValueError(f"shape must be (depth, height, width) with depth >= 4 and square "
                         f"slices of at least 24 pixels, got {shape!r}")
    images, labels, _ = make_volumes(int(n), dims, seed)
    return Dataset.from_arrays(images, labels, classes=("normal", "lesion"),
                               name="phantom-volumes", val_size=val_size, test_size=test_size,
                               seed=seed)
