"""Evaluation metrics: FID / KID from streamed features, improved precision and recall, 2-D
mixture mode coverage, convergence speed (steps to an FID level, area under the FID curve),
classification (accuracy, NLL, ECE), OOD detection, and the feature
extractors they run on (the FID Inception-v3 from a local weight file, a small digits CNN).

Each module's docstring cites the paper and the reference implementation it was checked against.
"""

from robustrep.metrics.classification import accuracy, expected_calibration_error, nll
from robustrep.metrics.convergence import Crossing, fid_area, first_crossings
from robustrep.metrics.extractors import (FID_WEIGHTS_FILE, DigitsFeatureNet, FIDInceptionV3,
                                          load_fid_inception, train_digits_feature_net)
from robustrep.metrics.fid import FeatureStats, frechet_distance, kid, polynomial_mmd2
from robustrep.metrics.mixtures import mode_stats
from robustrep.metrics.ood import ood_metrics
from robustrep.metrics.precision_recall import knn_radii, manifold_coverage, precision_recall
from robustrep.metrics.robust import RobustAccuracy, robust_accuracy

__all__ = [
    "FeatureStats", "frechet_distance", "kid", "polynomial_mmd2",
    "precision_recall", "knn_radii", "manifold_coverage",
    "mode_stats",
    "first_crossings", "fid_area", "Crossing",
    "accuracy", "nll", "expected_calibration_error",
    "ood_metrics",
    "robust_accuracy", "RobustAccuracy",
    "FIDInceptionV3", "load_fid_inception", "FID_WEIGHTS_FILE", "DigitsFeatureNet",
    "train_digits_feature_net",
]
