"""The classical road: image features, scaling and a scikit-learn classifier in one Pipeline.

Examples
--------
>>> from medfeat.classical import make_classifier
>>> from medfeat.io import make_phantoms
>>> ds = make_phantoms(n=40, size=32, seed=0)
>>> model = make_classifier("knn", n_neighbors=3).fit(ds.train.images, ds.train.labels.ravel())
>>> model.predict_proba(ds.test.images).shape
(6, 2)
"""

from __future__ import annotations

from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import QuantileTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from .features import FeatureExtractor

__all__ = ["make_classifier", "CLASSIFIERS"]

#: Classifier per kind, its defaults, and whether it takes ``random_state``.
CLASSIFIERS = {
    "knn": (KNeighborsClassifier, {"n_neighbors": 15, "weights": "distance"}, False),
    "tree": (DecisionTreeClassifier,
             {"max_depth": 6, "min_samples_leaf": 10, "class_weight": "balanced"}, True),
    "nb": (GaussianNB, {}, False),
    "forest": (RandomForestClassifier,
               {"n_estimators": 300, "min_samples_leaf": 2, "class_weight": "balanced_subsample"},
               True),
    "logreg": (LogisticRegression, {"C": 0.3, "max_iter": 5000, "class_weight": "balanced"},
               True),
    "gboost": (HistGradientBoostingClassifier,
               {"max_iter": 300, "learning_rate": 0.05, "class_weight": "balanced"}, True),
}


def make_classifier(kind="knn", *, features=None, scaler="standard", random_state=None,
                    n_jobs=None, **params):
    """A Pipeline ``features -> scale -> clf`` for stacks of images.

    Parameters
    ----------
    kind : {"knn", "tree", "nb", "forest", "logreg", "gboost"}, optional
        The classifier: k-nearest neighbours (15, distance-weighted), a decision tree (depth 6,
        balanced classes), Gaussian naive Bayes, a random forest (300 trees), an L2 logistic
        regression or histogram gradient boosting; defaults in :data:`CLASSIFIERS`.
    features : dict or FeatureExtractor, optional
        The feature step: an extractor, or keyword arguments for a new
        :class:`~medfeat.features.FeatureExtractor` (default: all families, 32 bins).
    scaler : {"standard", "quantile", None}, optional
        Scaling step: z-scores, a rank-based map to a normal distribution (robust to the heavy
        tails of some features), or none (``"passthrough"``).
    random_state : int, optional
        Passed to every classifier that is random (tree, forest, logreg, gboost) and to the
        quantile scaler.
    n_jobs : int, optional
        Parallel images in the feature step (unless ``features`` is an extractor) and trees in
        the forest.
    **params
        Override the classifier's defaults, e.g. ``n_neighbors=5``.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps named ``"features"``, ``"scale"`` and ``"clf"``.

    Raises
    ------
    ValueError
        For an unknown ``kind`` or ``scaler``.
    """
    if kind not in CLASSIFIERS:
        raise ValueError(f"unknown classifier kind {kind!r}; choose from {list(CLASSIFIERS)}")
    cls, defaults, seeded = CLASSIFIERS[kind]
    kwargs = dict(defaults)
    if seeded:
        kwargs["random_state"] = random_state
    if kind == "forest" and n_jobs is not None:
        kwargs["n_jobs"] = n_jobs
    kwargs.update(params)
    if isinstance(features, FeatureExtractor):
        fx = features
    else:
        fx_params = {"n_jobs": n_jobs, **(features or {})}
        fx = FeatureExtractor(**fx_params)
    if scaler == "standard":
        scale = StandardScaler()
    elif scaler == "quantile":
        scale = QuantileTransformer(n_quantiles=200, output_distribution="normal",
                                    random_state=random_state)
    elif scaler is None:
        scale = "passthrough"
    else:
        raise ValueError(f"scaler must be 'standard', 'quantile' or None, got {scaler!r}")
    return Pipeline([("features", fx), ("scale", scale), ("clf", cls(**kwargs))])
