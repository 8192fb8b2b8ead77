"""K-means colour quantization."""

from ._colors import ColorTable, color_table, palette_order
from ._palette import LearnedPalette, learn_palette, map_to_palette, pooled_colors, read_palette
from ._png import DEFAULT_PNG_LEVEL, PNG_LEVELS, cooccurrence_order, palette_png
from ._quality import mse_to_quality, parse_quality, quality_to_mse, quantize_quality
from ._quantizer import SPEED_LEVELS, KMeansQuantizer, PreparedColors, prepare_colors
from ._sweep import KMeansSweep, find_elbow, kmeans_sweep

__all__ = [
    "DEFAULT_PNG_LEVEL",
    "LearnedPalette",
    "PNG_LEVELS",
    "SPEED_LEVELS",
    "ColorTable",
    "KMeansQuantizer",
    "KMeansSweep",
    "PreparedColors",
    "color_table",
    "cooccurrence_order",
    "find_elbow",
    "kmeans_sweep",
    "learn_palette",
    "map_to_palette",
    "mse_to_quality",
    "palette_order",
    "palette_png",
    "parse_quality",
    "pooled_colors",
    "prepare_colors",
    "quality_to_mse",
    "quantize_quality",
    "read_palette",
]
from . import _codec  # noqa: F401  (registers the codec)
