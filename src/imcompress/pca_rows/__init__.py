"""Row PCA per colour channel (the study's second method)."""

from ._pca import RowPCA, explained_variance_ratios, n_components_for_variance, to_uint8

__all__ = ["RowPCA", "explained_variance_ratios", "n_components_for_variance", "to_uint8"]
from . import _codec  # noqa: F401  (registers the codec)
