"""The classical road's folds and search trials as dask.distributed tasks: same numbers."""

import math

import numpy as np
import pytest

from medfeat.evaluate import evaluate
from medfeat.io import make_phantoms

from ..conftest import local_cluster

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    with local_cluster() as c:
        yield c


@pytest.fixture(scope="module")
def small():
    return make_phantoms(n=60, size=32, seed=0)


def _trials(res):
    return [(t["settings"], t["val_auc"], t.get("note", ""))
            for t in res.params["search"]["trials"]]


def test_folds_and_trials_run_on_the_cluster_with_the_serial_numbers(client, small):
    kwargs = dict(cv=3, seed=0, progress=False, log=None, n_boot=50)
    methods = ("nb", "logreg", "tree")
    here = evaluate(small, methods, **kwargs)
    with distributed.get_task_stream(client) as stream:
        there = evaluate(small, methods, scheduler=client, **kwargs)
    ran = [t["key"] if isinstance(t["key"], str) else t["key"][0] for t in stream.data]
    n_trials = sum(len(here.methods[m].params["search"]["trials"]) for m in methods)
    assert sum(k.startswith("_fold_task") for k in ran) == 3 * len(methods)
    assert sum(k.startswith("_trial_task") for k in ran) == n_trials > 3 * len(methods)
    assert client.status == "running"        # a Client passed in is left open
    for name in methods:
        a, b = here.methods[name], there.methods[name]
        assert _trials(a) == _trials(b)
        assert a.params["search"]["chosen"] == b.params["search"]["chosen"]
        assert a.cv["folds"] == b.cv["folds"] and len(a.cv["folds"]) == 3
        for m in ("acc", "auc", "f1"):
            assert a.cv["mean"][m] == b.cv["mean"][m] or (math.isnan(a.cv["mean"][m]) and
                                                          math.isnan(b.cv["mean"][m]))
        np.testing.assert_array_equal(a.proba, b.proba)
        assert a.test == b.test
        assert a.params.get("calibration") == b.params.get("calibration")


def test_an_estimator_given_in_a_dict_and_a_fold_that_fails_on_a_worker(client, small):
    """A scikit-learn estimator (on the pixels, not searched) through a scheduler address: its
    folds on the cluster, the serial numbers; a fold that raises there raises here."""
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier

    kwargs = dict(cv=2, seed=1, progress=False, log=None, n_boot=20)
    address = client.scheduler.address
    here = evaluate(small, {"gnb": GaussianNB()}, **kwargs)
    with distributed.get_task_stream(client) as stream:
        there = evaluate(small, {"gnb": GaussianNB()}, scheduler=address, **kwargs)
    assert sum(str(t["key"]).lstrip("('").startswith("_fold_task") for t in stream.data) == 2
    a, b = here.methods["gnb"], there.methods["gnb"]
    assert a.cv["folds"] == b.cv["folds"] and len(a.cv["folds"]) == 2
    np.testing.assert_array_equal(a.proba, b.proba)
    # 40 neighbours: the final fit on 44 training images would do, a fold's 22 do not
    bad = {"knn": KNeighborsClassifier(n_neighbors=40)}
    with pytest.raises(ValueError, match="n_neighbors") as local:
        evaluate(small, bad, **kwargs)
    with pytest.raises(ValueError, match="n_neighbors") as remote:
        evaluate(small, bad, scheduler=address, **kwargs)
    assert str(remote.value) == str(local.value)
    assert client.status == "running"        # the Client made for the address was its own


def test_a_bad_scheduler_is_refused_before_any_work(small):
    with pytest.raises(ValueError, match="scheduler"):
        evaluate(small, ["nb"], cv=2, progress=False, log=None, scheduler=0)
    with pytest.raises(ValueError, match="scheduler"):
        evaluate(small, ["nb"], cv=2, progress=False, log=None, scheduler=2.5)
