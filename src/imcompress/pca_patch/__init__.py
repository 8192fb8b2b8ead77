"""Patch PCA: a transform learned from each image, as the ``pca-patch`` codec."""

from ._codec import PCAPatchCodec, quality_to_step

__all__ = ["PCAPatchCodec", "quality_to_step"]
