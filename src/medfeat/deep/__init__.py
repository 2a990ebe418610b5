"""The deep road: Keras 3 models, training, prediction and integrated-gradients explanations.

Importing this package is cheap; Keras (and its backend, TensorFlow by default) is imported when a
name below is first used, so ``import medfeat.deep`` works where Keras is not installed and fails
on first use with a message naming the ``deep`` extra.

===================  ===========================================================================
module               names
===================  ===========================================================================
models               :func:`build_model` ("cnn", "resnet18", "resnet50", "diagnostic"; for
                     volumes "cnn3d", "resnet18_3d")
segment              :func:`build_segmenter` ("deeplabv3", "unet"), :class:`Segmenter` (fit /
                     predict on label maps), :func:`dice_coefficient`,
                     :func:`iou_score`, :class:`DiceMetric`, :class:`IoUMetric`, :class:`DiceLoss`
training             :func:`train`, :func:`predict`, :class:`DeepClassifier` (fit / predict_proba,
                     the object the evaluation harness runs), :func:`save`, :func:`load`,
                     :data:`KIND_DEFAULTS`
explain              :func:`integrated_gradients`, :func:`overlay`, :func:`plot_attributions`,
                     :func:`volume_views`
augment_layers       :func:`keras_layers` (:mod:`medfeat.augment`'s operations as Keras layers),
                     :func:`keras_volume_layers`
gan                  :class:`ConditionalGAN` (class-conditional SNGAN), :func:`expand`,
                     :func:`expand_split` (synthetic training images), :func:`two_sample_auc`,
                     :func:`plot_samples`
===================  ===========================================================================
"""

import importlib

_EXPORTS = {
    "build_model": "models", "MODELS": "models",
    "build_segmenter": "segment", "dice_coefficient": "segment", "DiceMetric": "segment",
    "IoUMetric": "segment", "iou_score": "segment", "DiceLoss": "segment",
    "SEGMENTERS": "segment", "Segmenter": "segment",
    "train": "training", "predict": "training", "DeepClassifier": "training",
    "save": "training", "load": "training", "KIND_DEFAULTS": "training",
    "integrated_gradients": "explain", "overlay": "explain", "plot_attributions": "explain",
    "volume_views": "explain", "VOLUME_MODELS": "models",
    "ConditionalGAN": "gan", "expand": "gan", "expand_split": "gan", "two_sample_auc": "gan",
    "plot_samples": "gan",
    "keras_layers": "augment_layers", "keras_volume_layers": "augment_layers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'medfeat.deep' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
