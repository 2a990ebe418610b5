"""Medical images in: DICOM, the common image formats, datasets, and the embedded phantoms.

Everything that reads a file raises :class:`ImageReadError` (a :class:`ValueError`) naming the path
and the cause. pydicom, imageio, tifffile, Pillow and SciPy are imported when first needed, so
``import medfeat.io`` stays light.

Examples
--------
>>> import medfeat.io as mio
>>> ds = mio.make_phantoms(n=40, size=32, seed=0)
>>> ds.train.images.shape[1:], ds.classes
((32, 32), ('normal', 'lesion'))
"""

from ._errors import ImageReadError
from .datasets import (Dataset, DownloadError, ImageFolder, Split, is_series_folder,
                       label_strata, load_medmnist, load_npz, load_series_folder,
                       make_phantom_volumes, make_phantoms, resize_images, stratified_split)
from .dicom import ImageMeta, is_dicom, read_dicom, read_series
from .images import read_image, rgb_to_grey, rgb_to_hsv, rgb_to_lab
from .segmentation import SegmentationSet, load_segmentation_npz, make_phantom_segmentation

__all__ = [
    "ImageReadError", "ImageMeta", "read_dicom", "read_series", "is_dicom",
    "read_image", "rgb_to_grey", "rgb_to_hsv", "rgb_to_lab",
    "Dataset", "Split", "load_npz", "ImageFolder", "stratified_split", "load_medmnist",
    "make_phantoms", "make_phantom_volumes", "DownloadError", "load_series_folder",
    "is_series_folder", "label_strata",
    "resize_images", "SegmentationSet", "load_segmentation_npz", "make_phantom_segmentation",
]
