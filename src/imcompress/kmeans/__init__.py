"""K-means colour quantization."""

from ._colors import ColorTable, color_table, palette_order
from ._quality import mse_to_quality, parse_quality, quality_to_mse, quantize_quality
from ._quantizer import SPEED_LEVELS, KMeansQuantizer, PreparedColors, prepare_colors
from ._sweep import KMeansSweep, find_elbow, kmeans_sweep

__all__ = [
    "SPEED_LEVELS",
    "ColorTable",
    "KMeansQuantizer",
    "KMeansSweep",
    "PreparedColors",
    "color_table",
    "find_elbow",
    "kmeans_sweep",
    "mse_to_quality",
    "palette_order",
    "parse_quality",
    "prepare_colors",
    "quality_to_mse",
    "quantize_quality",
]
from . import _codec  # noqa: F401  (registers the codec)
