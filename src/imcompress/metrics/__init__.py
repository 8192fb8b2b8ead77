"""Quality and size metrics (float64 arithmetic throughout)."""

from ._metrics import (
    bits_per_pixel,
    compression_ratio,
    mse,
    psnr,
    psnr_from_mse,
    rmse,
    ssim,
    unique_colors,
)

__all__ = [
    "bits_per_pixel",
    "compression_ratio",
    "mse",
    "psnr",
    "psnr_from_mse",
    "rmse",
    "ssim",
    "unique_colors",
]
