"""The IBSI-1 digital phantom and its published reference values.

Phantom: 5 x 4 x 4 (x, y, z) voxels of 2 mm, grey levels 1..6 (2 and 5 absent) plus one excluded
voxel of 9, with a region-of-interest mask that leaves out 6 voxels (74 remain). IBSI reference
manual (Zwanenburg A. et al., "The Image Biomarker Standardization Initiative: standardized
quantitative radiomics for high-throughput image-based phenotyping", Radiology 295:328-338, 2020;
manual arXiv:1612.07003), chapter "Reference data sets", section "Digital phantom" (figure
"Exploded view of the test volume"); the voxel values were transcribed here from the phantom's
DICOM files published by the IBSI at https://github.com/theibsi/data_sets (ibsi_1_digital_phantom),
as listed voxel by voxel in the Nyxus test data (PolusAI/nyxus, tests/test_data.h), and laid out
here so that the first axis is the slice axis: 4 slices (z) of 4 rows (y) and 5 columns (x). The
layout is checked against the manual's own per-slice co-occurrence matrices below.

Reference values: IBSI-1 reference manual, chapter 3 "Image features", the reference-value table
under each feature (row "dig. phantom"): section 3.3 (intensity-based statistics, 3D), section 3.4
(intensity histogram, 3D) and section 3.6 (grey level co-occurrence matrix; aggregations "2D:avg",
"2D:mrg", "3D:avg" and "3D:mrg" are pinned here; "2D:mrg" is also checked through the manual's
per-slice matrices).
The manual gives digital-phantom values to three significant figures with no tolerance: a value
agrees when it rounds, at three significant figures, to the published one, which is what the
tests assert.
"""

import numpy as np

PHANTOM = np.array([
    [[4, 4, 6, 4, 1],
     [4, 1, 6, 4, 1],
     [1, 4, 6, 1, 1],
     [1, 4, 4, 1, 1]],
    [[4, 4, 6, 1, 1],
     [1, 1, 3, 1, 1],
     [1, 1, 6, 1, 1],
     [1, 4, 4, 1, 1]],
    [[1, 1, 6, 1, 1],
     [1, 1, 9, 1, 1],
     [1, 1, 1, 1, 1],
     [1, 4, 4, 1, 1]],
    [[1, 1, 6, 1, 1],
     [1, 1, 1, 1, 1],
     [1, 1, 1, 1, 1],
     [1, 4, 4, 1, 1]],
], dtype=np.float64)

MASK = np.ones(PHANTOM.shape, bool)
MASK[1, 1, 0] = False            # excluded border voxel
MASK[2, 1, 2] = False            # the internal excluded voxel (value 9)
MASK[2:4, 3, 3:5] = False        # excluded corner of the last two slices

# IBSI-1 "Digital phantom texture matrices" chapter: the 2-D (xy plane) GLCMs of each slice with
# the 4 directions merged, Chebyshev distance 1, as {(i, j): count} (symmetric).
GLCM_2D_MERGED_MATRICES = [
    {(1, 1): 22, (1, 4): 17, (1, 6): 6, (4, 1): 17, (4, 4): 16, (4, 6): 11, (6, 1): 6,
     (6, 4): 11, (6, 6): 4},
    {(1, 1): 42, (1, 3): 5, (1, 4): 8, (1, 6): 8, (3, 1): 5, (3, 4): 1, (3, 6): 2, (4, 1): 8,
     (4, 3): 1, (4, 4): 4, (4, 6): 3, (6, 1): 8, (6, 3): 2, (6, 4): 3},
    {(1, 1): 56, (1, 4): 7, (1, 6): 4, (4, 1): 7, (4, 4): 2, (6, 1): 4},
    {(1, 1): 70, (1, 4): 7, (1, 6): 5, (4, 1): 7, (4, 4): 2, (6, 1): 5},
]

# IBSI-1 section 3.3, intensity-based statistical features, dig. phantom.
INTENSITY_REF = {
    "mean": 2.15, "variance": 3.05, "skewness": 1.08, "kurtosis": -0.355, "median": 1.0,
    "minimum": 1.0, "p10": 1.0, "p90": 4.0, "maximum": 6.0, "iqr": 3.0, "range": 5.0,
    "mad": 1.55, "rmad": 1.11, "medad": 1.15, "cov": 0.812, "qcod": 0.6, "energy": 567.0,
    "rms": 2.77,
}

# IBSI-1 section 3.4, intensity histogram features, dig. phantom (no discretisation needed;
# fixed bin width 1 leaves the phantom unchanged).
HISTOGRAM_REF = {
    "mean": 2.15, "variance": 3.05, "skewness": 1.08, "kurtosis": -0.355, "median": 1.0,
    "minimum": 1.0, "p10": 1.0, "p90": 4.0, "maximum": 6.0, "mode": 1.0, "iqr": 3.0,
    "range": 5.0, "mad": 1.55, "rmad": 1.11, "medad": 1.15, "cov": 0.812, "qcod": 0.6,
    "entropy": 1.27, "uniformity": 0.512, "max_grad": 8.0, "max_grad_gl": 3.0,
    "min_grad": -50.0, "min_grad_gl": 1.0,
}

# IBSI-1 section 3.6, GLCM features, dig. phantom, symmetric matrices, Chebyshev distance 1.
GLCM_REF = {
    "3d_merged": {
        "joint_maximum": 0.509, "joint_average": 2.15, "joint_variance": 3.13,
        "joint_entropy": 2.57, "difference_average": 1.38, "difference_variance": 3.21,
        "difference_entropy": 1.64, "sum_average": 4.3, "sum_variance": 7.41,
        "sum_entropy": 2.11, "angular_second_moment": 0.291, "contrast": 5.12,
        "dissimilarity": 1.38, "inverse_difference": 0.688,
        "normalised_inverse_difference": 0.856, "inverse_difference_moment": 0.631,
        "normalised_inverse_difference_moment": 0.902, "inverse_variance": 0.0574,
        "correlation": 0.183, "autocorrelation": 5.19, "cluster_tendency": 7.41,
        "cluster_shade": 17.4, "cluster_prominence": 147.0,
        "information_correlation_1": -0.0288, "information_correlation_2": 0.269,
    },
    "2d_average": {
        "joint_maximum": 0.519, "joint_average": 2.14, "joint_variance": 2.69,
        "joint_entropy": 2.05, "difference_average": 1.42, "difference_variance": 2.9,
        "difference_entropy": 1.4, "sum_average": 4.28, "sum_variance": 5.47,
        "sum_entropy": 1.6, "angular_second_moment": 0.368, "contrast": 5.28,
        "dissimilarity": 1.42, "inverse_difference": 0.678,
        "normalised_inverse_difference": 0.851, "inverse_difference_moment": 0.619,
        "normalised_inverse_difference_moment": 0.899, "inverse_variance": 0.0567,
        "correlation": -0.0121, "autocorrelation": 5.09, "cluster_tendency": 5.47,
        "cluster_shade": 7.0, "cluster_prominence": 79.1,
        "information_correlation_1": -0.155, "information_correlation_2": 0.487,
    },
    # IBSI-1 section 3.6, benchmark table of each GLCM feature, row "dig. phantom", aggregation
    # "2D, slice-merged" (2D:mrg, SUJT: directional matrices merged per slice, features averaged
    # over slices).
    "2d_merged": {
        "joint_maximum": 0.512, "joint_average": 2.14, "joint_variance": 2.71,
        "joint_entropy": 2.24, "difference_average": 1.4, "difference_variance": 3.06,
        "difference_entropy": 1.49, "sum_average": 4.29, "sum_variance": 5.66,
        "sum_entropy": 1.79, "angular_second_moment": 0.352, "contrast": 5.19,
        "dissimilarity": 1.4, "inverse_difference": 0.683,
        "normalised_inverse_difference": 0.854, "inverse_difference_moment": 0.625,
        "normalised_inverse_difference_moment": 0.901, "inverse_variance": 0.0553,
        "correlation": 0.0173, "autocorrelation": 5.14, "cluster_tendency": 5.66,
        "cluster_shade": 6.98, "cluster_prominence": 80.4,
        "information_correlation_1": -0.0341, "information_correlation_2": 0.263,
    },
    # IBSI-1 section 3.6, benchmark table of each GLCM feature, row "dig. phantom", aggregation
    # "3D, averaged" (3D:avg, ITBB: one matrix per 3-D direction, features averaged over the 13
    # directions).
    "3d_average": {
        "joint_maximum": 0.503, "joint_average": 2.14, "joint_variance": 3.1,
        "joint_entropy": 2.4, "difference_average": 1.43, "difference_variance": 3.06,
        "difference_entropy": 1.56, "sum_average": 4.29, "sum_variance": 7.07,
        "sum_entropy": 1.92, "angular_second_moment": 0.303, "contrast": 5.32,
        "dissimilarity": 1.43, "inverse_difference": 0.677,
        "normalised_inverse_difference": 0.851, "inverse_difference_moment": 0.618,
        "normalised_inverse_difference_moment": 0.898, "inverse_variance": 0.0604,
        "correlation": 0.157, "autocorrelation": 5.06, "cluster_tendency": 7.07,
        "cluster_shade": 16.6, "cluster_prominence": 145.0,
        "information_correlation_1": -0.157, "information_correlation_2": 0.52,
    },
}
