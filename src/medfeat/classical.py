"""The classical road: image features, scaling and a scikit-learn classifier in one Pipeline.

Examples
--------
>>> from medfeat.classical import make_classifier
>>> from medfeat.io import make_phantoms
>>> ds = make_phantoms(n=40, size=32, seed=0)
>>> model = make_classifier("knn", n_neighbors=3).fit(ds.train.images, ds.train.labels.ravel())
>>> model.predict_proba(ds.test.images).shape
(6, 2)

Multi-label targets (a 0/1 matrix ``(n, n_labels)``, several findings per image) take
``multilabel=True``: kNN, the tree and the forest fit all labels at once (scikit-learn's
multi-output support), naive Bayes, logistic regression and gradient boosting one binary
classifier per label (:class:`MultiLabelClassifier`).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import ndtri
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import QuantileTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .features import FeatureExtractor

# scikit-learn's margin for values at the ends of the learnt quantiles (QuantileTransformer).
_BOUND = 1e-7
# The normal quantiles it clips its output to (so that the inverse map stays consistent).
_CLIP = ndtri(np.array([_BOUND - np.spacing(1), 1 - (_BOUND - np.spacing(1))]))

__all__ = ["make_classifier", "CLASSIFIERS", "BalancedKNeighborsClassifier",
           "DecorrelatedGaussianNB", "QuantileScaler", "MultiLabelClassifier"]


class BalancedKNeighborsClassifier(KNeighborsClassifier):
    """k-nearest neighbours whose votes can be weighted by inverse class frequency.

    With ``class_weight="balanced"`` each neighbour's vote (uniform or distance-weighted) for
    class ``c`` counts ``n / (n_classes * n_c)``, ``n_c`` being the training count of ``c``: the
    probabilities become those of a training set with equal priors (a prior-shift correction),
    and ``predict`` takes their arg-max. Ranking scores such as ROC AUC of a binary task do not
    change; the 0.5 threshold (ACC) no longer favours the majority class. ``None`` is plain
    :class:`~sklearn.neighbors.KNeighborsClassifier`.

    Parameters
    ----------
    n_neighbors, weights, algorithm, leaf_size, p, metric, metric_params, n_jobs
        As :class:`~sklearn.neighbors.KNeighborsClassifier`.
    class_weight : "balanced", dict or None, optional
        ``"balanced"`` as above, a dict of weights by class label (others 1), or ``None``.

    Attributes
    ----------
    class_weight_ : ndarray of float64, shape (n_classes,)
        The weight of each class of ``classes_`` (ones without balancing); a list of them, one
        per output, for a 2-D ``y``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.r_[np.zeros(9), np.ones(3)][:, None] + np.arange(12)[:, None] * 0.01
    >>> y = np.r_[np.zeros(9, int), np.ones(3, int)]
    >>> plain = BalancedKNeighborsClassifier(6, class_weight=None).fit(X, y)
    >>> fair = BalancedKNeighborsClassifier(6).fit(X, y)
    >>> plain.predict([[0.6]]).item(), fair.predict([[0.6]]).item()
    (0, 1)
    """

    def __init__(self, n_neighbors=5, *, weights="uniform", algorithm="auto", leaf_size=30, p=2,
                 metric="minkowski", metric_params=None, n_jobs=None, class_weight="balanced"):
        super().__init__(n_neighbors=n_neighbors, weights=weights, algorithm=algorithm,
                         leaf_size=leaf_size, p=p, metric=metric, metric_params=metric_params,
                         n_jobs=n_jobs)
        self.class_weight = class_weight

    def fit(self, X, y):
        """Fit as :class:`~sklearn.neighbors.KNeighborsClassifier`, then weigh the classes.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        y : array_like, shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        if not (self.class_weight in ("balanced", None) or isinstance(self.class_weight, dict)):
            raise ValueError(f"class_weight must be 'balanced', a dict or None, got "
                             f"{self.class_weight!r}")
        super().fit(X, y)
        ys = self._y.reshape(len(self._y), -1)
        classes = self.classes_ if self.outputs_2d_ else [self.classes_]
        weights = []
        for k, cls in enumerate(classes):
            weights.append(compute_class_weight(self.class_weight, classes=cls, y=cls[ys[:, k]])
                           .astype(np.float64))
        self.class_weight_ = weights if self.outputs_2d_ else weights[0]
        return self

    def predict_proba(self, X):
        """Class probabilities from the weighted votes.

        Parameters
        ----------
        X : array_like, shape (n_queries, n_features)

        Returns
        -------
        ndarray of float64, shape (n_queries, n_classes)
        """
        check_is_fitted(self)
        proba = super().predict_proba(X)
        if self.class_weight is None:
            return proba

        def weigh(p, w):
            p = p * w
            return p / p.sum(axis=1, keepdims=True)
        if self.outputs_2d_:
            return [weigh(p, w) for p, w in zip(proba, self.class_weight_)]
        return weigh(proba, self.class_weight_)

    def predict(self, X):
        """The class of highest weighted probability.

        Parameters
        ----------
        X : array_like, shape (n_queries, n_features)

        Returns
        -------
        ndarray, shape (n_queries,)
        """
        check_is_fitted(self)
        if self.class_weight is None:
            return super().predict(X)
        proba = self.predict_proba(X)
        if self.outputs_2d_:
            return np.stack([c[np.argmax(p, axis=1)] for c, p in zip(self.classes_, proba)],
                            axis=1)
        return self.classes_[np.argmax(proba, axis=1)]


class DecorrelatedGaussianNB(ClassifierMixin, BaseEstimator):
    """Gaussian naive Bayes on whitened principal components of the features.

    Naive Bayes assumes independent features given the class; radiomics features are strongly
    correlated (a dozen first-order statistics all follow the image's spread). Rotating them to
    whitened principal components (fitted on the training data, both classes together) first
    removes the linear part of that dependence. Class priors may be set equal (``"balanced"``),
    so that the 0.5 threshold does not favour the majority class.

    Parameters
    ----------
    n_components : int, float or None, optional
        Principal components kept (:class:`~sklearn.decomposition.PCA`'s meaning; an integer is
        capped at the number of features and samples); ``None`` keeps all.
    priors : "balanced", array_like or None, optional
        ``"balanced"``: equal priors; an array: the priors; ``None``: the training frequencies.
    var_smoothing : float, optional
        As :class:`~sklearn.naive_bayes.GaussianNB`.
    whiten : bool, optional
        Scale the components to unit variance (naive Bayes' variances make this a no-op for its
        decisions, but it keeps ``var_smoothing`` on a common scale).
    random_state : int, optional
        Passed to PCA; its solvers here are exact (no randomness), so this changes nothing.

    Attributes
    ----------
    pca_ : sklearn.decomposition.PCA
    nb_ : sklearn.naive_bayes.GaussianNB
    classes_ : ndarray

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(80, 4)); X[:, 1] = X[:, 0] + 0.1 * X[:, 1]
    >>> y = (X[:, 0] > 0.8).astype(int)
    >>> DecorrelatedGaussianNB(n_components=2).fit(X, y).predict_proba(X[:2]).shape
    (2, 2)
    """

    def __init__(self, n_components=None, *, priors="balanced", var_smoothing=1e-9,
                 whiten=True, random_state=None):
        self.n_components = n_components
        self.priors = priors
        self.var_smoothing = var_smoothing
        self.whiten = whiten
        self.random_state = random_state

    def fit(self, X, y):
        """Fit the rotation, then naive Bayes on the rotated training data.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        y : array_like, shape (n_samples,)

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        if X.shape[0] < 2:
            raise ValueError(f"DecorrelatedGaussianNB needs at least 2 samples to fit its "
                             f"rotation, got n_samples={X.shape[0]}")
        self.classes_ = np.unique(y)
        nc = self.n_components
        if isinstance(nc, (int, np.integer)) and not isinstance(nc, bool):
            nc = int(min(nc, X.shape[1], X.shape[0]))
        # exact solvers: the eigenvectors of the covariance for the usual tall feature matrix
        # (one small p x p eigen-decomposition), a full SVD otherwise; scikit-learn's "auto"
        # takes its randomized solver for a few hundred rows, which is approximate and, for a
        # 700 x 120 matrix, slower than either
        solver = "covariance_eigh" if X.shape[0] >= X.shape[1] else "full"
        self.pca_ = PCA(n_components=nc, whiten=self.whiten, svd_solver=solver,
                        random_state=self.random_state).fit(X)
        priors = self.priors
        if isinstance(priors, str):
            if priors != "balanced":
                raise ValueError(f"priors must be 'balanced', an array or None, got {priors!r}")
            priors = np.full(len(self.classes_), 1.0 / len(self.classes_))
        self.nb_ = GaussianNB(priors=priors, var_smoothing=self.var_smoothing).fit(
            self.pca_.transform(X), y)
        return self

    def _rotated(self, X):
        check_is_fitted(self)
        return self.pca_.transform(validate_data(self, X, reset=False))

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)

        Returns
        -------
        ndarray of float64, shape (n_samples, n_classes)
        """
        Z = self._rotated(X)
        return self.nb_.predict_proba(Z)

    def predict_log_proba(self, X):
        """Log class probabilities.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)

        Returns
        -------
        ndarray of float64, shape (n_samples, n_classes)
        """
        Z = self._rotated(X)
        return self.nb_.predict_log_proba(Z)

    def predict(self, X):
        """The most probable class.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples,)
        """
        Z = self._rotated(X)
        return self.nb_.predict(Z)


class QuantileScaler(QuantileTransformer):
    """:class:`~sklearn.preprocessing.QuantileTransformer` to a normal distribution whose
    ``n_quantiles`` is capped at the number of training samples without a warning.

    Parameters
    ----------
    n_quantiles : int, optional
    output_distribution : {"normal", "uniform"}, optional
    random_state : int, optional
        As :class:`~sklearn.preprocessing.QuantileTransformer` (other parameters at its
        defaults).

    Examples
    --------
    >>> import numpy as np
    >>> QuantileScaler().fit(np.arange(10.0)[:, None]).n_quantiles_
    10
    """

    def __init__(self, n_quantiles=200, *, output_distribution="normal", random_state=None):
        super().__init__(n_quantiles=n_quantiles, output_distribution=output_distribution,
                         random_state=random_state)

    def fit(self, X, y=None):
        """Learn the quantiles of each feature.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="n_quantiles .* is greater than the total",
                                    category=UserWarning)
            return super().fit(X, y)

    def _transform_col(self, X_col, quantiles, inverse):
        # The forward map to a normal distribution, with the same operations as scikit-learn's
        # QuantileTransformer (the mean of the ascending and descending interpolations, the
        # out-of-range values pinned to the bounds, then the normal quantile function, clipped)
        # but the quantile function taken as scipy.special.ndtri, which is what
        # scipy.stats.norm.ppf evaluates, without that method's per-call argument handling
        # (three calls per feature, most of the transform's time). Values are bit for bit the
        # same (tested against QuantileTransformer); other cases go to scikit-learn.
        if inverse or self.output_distribution != "normal" or X_col.dtype != np.float64:
            return super()._transform_col(X_col, quantiles, inverse)
        lo, hi = quantiles[0], quantiles[-1]
        with np.errstate(invalid="ignore"):
            below = X_col - _BOUND < lo
            above = X_col + _BOUND > hi
        finite = ~np.isnan(X_col)
        x = X_col[finite]
        up = np.interp(x, quantiles, self.references_)
        down = np.interp(-x, -quantiles[::-1], -self.references_[::-1])
        X_col[finite] = 0.5 * (up - down)
        X_col[above] = 1
        X_col[below] = 0
        with np.errstate(invalid="ignore"):
            out = ndtri(X_col) * 1.0 + 0.0       # as norm.ppf: its scale and location applied
            return np.clip(out, _CLIP[0], _CLIP[1])


#: Classifiers that fit a 0/1 matrix of labels natively (scikit-learn multi-output).
_NATIVE_MULTI_OUTPUT = (KNeighborsClassifier, DecisionTreeClassifier, RandomForestClassifier)


class MultiLabelClassifier(ClassifierMixin, BaseEstimator):
    """A binary classifier applied to every label of a multi-label task.

    Fitted on a 0/1 matrix ``Y`` ``(n, n_labels)``: classifiers with scikit-learn's
    multi-output support (k-nearest neighbours, decision trees, random forests) fit all labels
    at once (``strategy="native"``; balanced class weights are then computed per label); the
    others fit one clone per label on that label's 0/1 column (binary relevance, the
    one-vs-rest reading of multi-label; ``strategy="per_label"``). ``"auto"`` picks the former
    where it is supported. A label that holds one value in training gets that value's
    probability (0 or 1) for every sample.

    Parameters
    ----------
    estimator : scikit-learn classifier
        Cloned, never fitted itself.
    strategy : {"auto", "native", "per_label"}, optional

    Attributes
    ----------
    estimators_ : list
        The fitted clone (``"native"``: one) or clones (``"per_label"``: one per label, None
        for a constant label).
    strategy_ : str
        ``"native"`` or ``"per_label"``.
    classes_ : list of ndarray
        ``[array([0, 1])] * n_labels`` (scikit-learn's multi-output convention).
    n_labels_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 3))
    >>> Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0.5]).astype(int)
    >>> clf = MultiLabelClassifier(LogisticRegression()).fit(X, Y)
    >>> clf.strategy_, clf.predict_proba(X).shape, bool((clf.predict(X) == Y).mean() > 0.9)
    ('per_label', (60, 2), True)
    """

    def __init__(self, estimator, *, strategy="auto"):
        self.estimator = estimator
        self.strategy = strategy

    def fit(self, X, y):
        """Fit on features ``X`` and a 0/1 label matrix ``y`` ``(n, n_labels)``.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        y : array_like, shape (n_samples, n_labels)
            0/1 findings, ``n_labels >= 2``.

        Returns
        -------
        self
        """
        if self.strategy not in ("auto", "native", "per_label"):
            raise ValueError(f"strategy must be 'auto', 'native' or 'per_label', got "
                             f"{self.strategy!r}")
        Y = np.asarray(y)
        if Y.ndim != 2 or Y.shape[1] < 2 or not np.all(np.isin(Y, (0, 1))):
            raise ValueError(f"y must be a 0/1 matrix (n_samples, n_labels) with n_labels >= 2, "
                             f"got shape {Y.shape}")
        Y = Y.astype(np.int64)
        native = isinstance(self.estimator, _NATIVE_MULTI_OUTPUT)
        if self.strategy == "native" and not native:
            raise ValueError(f"strategy='native': {type(self.estimator).__name__} does not fit "
                             f"several outputs; use 'per_label'")
        self.strategy_ = "native" if native and self.strategy != "per_label" else "per_label"
        self.n_labels_ = Y.shape[1]
        self.classes_ = [np.array([0, 1]) for _ in range(self.n_labels_)]
        if self.strategy_ == "native":
            self.estimators_ = [clone(self.estimator).fit(X, Y)]
        else:
            self.estimators_ = [clone(self.estimator).fit(X, Y[:, k])
                                if 0 < Y[:, k].sum() < Y.shape[0] else None
                                for k in range(self.n_labels_)]
        self.constant_ = Y.mean(axis=0) >= 0.5       # the value of a single-valued label
        return self

    def predict_proba(self, X):
        """Probability of every finding.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)

        Returns
        -------
        ndarray of float64, shape (n_samples, n_labels)
            Column ``k``: the probability that label ``k`` is 1 (rows need not sum to 1).
        """
        check_is_fitted(self)
        n = np.shape(X)[0]
        out = np.empty((n, self.n_labels_))
        if self.strategy_ == "native":
            model = self.estimators_[0]
            probas = model.predict_proba(X)
            for k, (p, cls) in enumerate(zip(probas, model.classes_)):
                cls = np.asarray(cls)
                out[:, k] = p[:, cls == 1][:, 0] if np.any(cls == 1) else 0.0
            return out
        for k, model in enumerate(self.estimators_):
            if model is None:
                out[:, k] = float(self.constant_[k])
            else:
                p = model.predict_proba(X)
                out[:, k] = p[:, np.flatnonzero(model.classes_ == 1)[0]]
        return out

    def predict(self, X):
        """Findings predicted present: probability above 0.5.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)

        Returns
        -------
        ndarray of int64, shape (n_samples, n_labels)
        """
        return (self.predict_proba(X) > 0.5).astype(np.int64)


#: Classifier per kind, its defaults, and whether it takes ``random_state``.
CLASSIFIERS = {
    "knn": (BalancedKNeighborsClassifier,
            {"n_neighbors": 15, "weights": "distance", "class_weight": "balanced"}, False),
    "tree": (DecisionTreeClassifier,
             {"max_depth": 4, "min_samples_leaf": 10, "class_weight": "balanced"}, True),
    "nb": (DecorrelatedGaussianNB, {"n_components": 40, "priors": "balanced"}, True),
    "forest": (RandomForestClassifier,
               {"n_estimators": 300, "min_samples_leaf": 2, "class_weight": "balanced_subsample"},
               True),
    "logreg": (LogisticRegression, {"C": 0.3, "max_iter": 5000, "class_weight": "balanced"},
               True),
    "gboost": (HistGradientBoostingClassifier,
               {"max_iter": 300, "learning_rate": 0.05, "class_weight": "balanced"}, True),
}


#: The scaler of each kind under ``scaler="auto"``: rank-based for the distance- and
#: density-based classifiers, which heavy-tailed features (GLCM cluster prominence, energy)
#: would otherwise dominate; z-scores for the rest (trees ignore scaling).
AUTO_SCALER = {"knn": "quantile", "nb": "quantile"}


def make_classifier(kind="knn", *, features=None, scaler="auto", random_state=None,
                    n_jobs=None, multilabel=False, **params):
    """A Pipeline ``features -> scale -> clf`` for stacks of images.

    Parameters
    ----------
    kind : {"knn", "tree", "nb", "forest", "logreg", "gboost"}, optional
        The classifier: k-nearest neighbours (15, distance-weighted, votes weighted by inverse
        class frequency: :class:`BalancedKNeighborsClassifier`), a decision tree (depth 4, leaves
        of at least 10, balanced classes), Gaussian naive Bayes on 40 whitened principal
        components with equal priors (:class:`DecorrelatedGaussianNB`), a random forest (300
        trees), an L2 logistic regression or histogram gradient boosting; defaults in
        :data:`CLASSIFIERS`,
        chosen on PneumoniaMNIST's validation split (benchmarks/accuracy_classical.py).
    features : dict or FeatureExtractor, optional
        The feature step: an extractor, or keyword arguments for a new
        :class:`~medfeat.features.FeatureExtractor` (default: all families, 32 bins).
    scaler : {"auto", "standard", "quantile", None}, optional
        Scaling step: z-scores, a rank-based map to a normal distribution
        (:class:`QuantileScaler`, robust to the heavy tails of some features), or none
        (``"passthrough"``). ``"auto"`` is ``"quantile"`` for knn and nb, ``"standard"`` for the
        others (:data:`AUTO_SCALER`).
    random_state : int, optional
        Passed to every classifier that is random (tree, nb's PCA, forest, logreg, gboost) and
        to the quantile scaler.
    n_jobs : int, optional
        Parallel images in the feature step (unless ``features`` is an extractor) and trees in
        the forest.
    multilabel : bool, optional
        For a 0/1 label matrix ``(n, n_labels)``: the classifier is wrapped in
        :class:`MultiLabelClassifier` (knn, tree and forest fit every label at once, nb, logreg
        and gboost one classifier per label), and ``predict_proba`` gives one probability per
        label ``(n, n_labels)``.
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

    Examples
    --------
    >>> import numpy as np
    >>> from medfeat.io import make_phantoms
    >>> ds = make_phantoms(n=60, size=32, seed=0)
    >>> y = ds.train.labels
    >>> Y = np.column_stack([y, 1 - y])                   # two findings per image
    >>> model = make_classifier("logreg", multilabel=True).fit(ds.train.images, Y)
    >>> model.predict_proba(ds.test.images).shape
    (8, 2)
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
    if scaler == "auto":
        scaler = AUTO_SCALER.get(kind, "standard")
    if scaler == "standard":
        scale = StandardScaler()
    elif scaler == "quantile":
        scale = QuantileScaler(n_quantiles=200, output_distribution="normal",
                               random_state=random_state)
    elif scaler is None:
        scale = "passthrough"
    else:
        raise ValueError(f"scaler must be 'auto', 'standard', 'quantile' or None, got "
                         f"{scaler!r}")
    clf = cls(**kwargs)
    if multilabel:
        clf = MultiLabelClassifier(clf)
    return Pipeline([("features", fx), ("scale", scale), ("clf", clf)])
