"""The file format of the deep road: one Keras 3 ``.keras`` archive, with medfeat's metadata of an
estimator (its parameters, classes and preprocessing) as one more JSON entry that Keras ignores."""

import json
import os
import tempfile
import zipfile

from ._keras import import_keras

_META_NAME = "medfeat.json"
_FORMAT = "medfeat.DeepClassifier"


def _check_path(path):
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"path must end with '.keras' (the Keras 3 format), got {path!r}")
    return path


def write_archive(model, meta, path):
    """Write ``model`` (and the dict ``meta``, unless None) to the ``.keras`` file ``path``,
    atomically: a temporary file in the same folder, then renamed over ``path``."""
    path = _check_path(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".keras", dir=folder)
    os.close(fd)
    try:
        model.save(tmp, overwrite=True)
        if meta is not None:
            with zipfile.ZipFile(tmp, "a") as archive:
                archive.writestr(_META_NAME, json.dumps(meta, indent=1))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_archive(path):
    """``(model, meta)`` of a file :func:`write_archive` wrote (``meta`` None for a plain Keras
    file); the model loaded with ``safe_mode=True`` (no arbitrary code from the file)."""
    path = _check_path(path)
    if not os.path.isfile(path):
        raise ValueError(f"path {path!r} is not a file")
    keras = import_keras()
    try:
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read(_META_NAME)) if _META_NAME in archive.namelist() \
                else None
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path!r} is not a .keras archive") from exc
    model = keras.saving.load_model(path, safe_mode=True, compile=False)
    if meta is not None and meta.get("format") != _FORMAT:
        raise ValueError(f"{path!r}: unknown medfeat metadata format {meta.get('format')!r}")
    return model, meta
