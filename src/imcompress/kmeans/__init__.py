"""K-means colour quantization."""

from ._colors import ColorTable, color_table
from ._quantizer import KMeansQuantizer
from ._sweep import KMeansSweep, find_elbow, kmeans_sweep

__all__ = ["ColorTable", "KMeansQuantizer", "KMeansSweep", "color_table", "find_elbow", "kmeans_sweep"]
