"""Prediction, with test-time augmentation by flips."""


import numpy as np

from ._inputs import _check_positive_int, _model_input


#: Test-time flips: the axes each view reverses, counted from the end of a model input that has
#: its channel axis (-2 width, -3 height, -4 depth of a volume).
_TTA_AXES = {"none": (), "horizontal": (-2,), "vertical": (-3,), "both": (-3, -2),
             "depth": (-4,), "depth_horizontal": (-4, -2), "depth_vertical": (-4, -3),
             "all": (-4, -3, -2)}


_TTA = {view: (lambda x, axes=axes: np.flip(x, axes) if axes else x)
        for view, axes in _TTA_AXES.items()}


def _tta_views(tta, volumes=False):
    if tta is False or tta is None:
        return ("none",)
    if tta is True:  # images: the 4 flips of the plane; volumes: the 8 flips of the cube
        return tuple(_TTA) if volumes else ("none", "horizontal", "vertical", "both")
    if isinstance(tta, str):
        tta = (tta,)
    views = tuple(tta)
    names = tuple(_TTA) if volumes else ("none", "horizontal", "vertical", "both")
    bad = [v for v in views if v not in names]
    if bad or not views:
        raise ValueError(f"tta must be a bool or flips among {names}, got {tta!r}"
                         + ("" if volumes else " (depth flips need volumes)"))
    return views if "none" in views else ("none", *views)


def predict(model, X, *, tta=False, batch_size=256):
    """Class probabilities, optionally averaged over flipped copies (test-time augmentation).

    Parameters
    ----------
    model : keras.Model
    X : ndarray
        Images ``(n, H, W)`` or ``(n, H, W, C)``, scaled as for training.
    tta : bool, str or sequence of str
        ``True``: mean over the image and its horizontal, vertical and double flips; or names
        among ``"horizontal"``, ``"vertical"``, ``"both"`` (the unflipped image is always
        included). Volumes (a 3-D model): ``True`` averages the 8 flips along the depth, height
        and width axes; names also ``"depth"``, ``"depth_horizontal"``, ``"depth_vertical"``,
        ``"all"``.
    batch_size : int

    Returns
    -------
    ndarray
        ``(n, n_outputs)`` float64.

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.deep import build_model
    >>> model = build_model("cnn", (16, 16), 3, width=4, dense=8, seed=0)
    >>> p = predict(model, np.zeros((5, 16, 16), np.float32), tta=True)
    >>> p.shape, bool(np.allclose(p.sum(axis=1), 1))
    ((5, 3), True)
    """
    batch_size = _check_positive_int(batch_size, "batch_size")
    Xf = _model_input(model, X)
    views = _tta_views(tta, volumes=Xf.ndim == 5)
    total = None
    for view in views:
        Xv = np.ascontiguousarray(_TTA[view](Xf))
        p = np.asarray(model.predict(Xv, batch_size=batch_size, verbose=0), dtype=np.float64)
        total = p if total is None else total + p
    return total / len(views)
