"""Colour spaces the quantizer clusters in, and the way back to sRGB.

``rgb``
    sRGB values 0..255 as they are (the objective is the PSNR one).
``lab``
    CIELAB (D65, scikit-image's ``rgb2lab``), L in 0..100.
``oklab``
    Björn Ottosson's Oklab (2020), from his published matrices, scaled by 100
    so L spans 0..100 like CIELAB.
RGBA images are clustered in premultiplied sRGB + alpha
``(r*a/255, g*a/255, b*a/255, a)``: every fully transparent pixel becomes the
one point (0, 0, 0, 0), whatever its colour channels held.
"""

from __future__ import annotations

import numpy as np

COLOR_SPACES = ("rgb", "lab", "oklab")

# Ottosson, "A perceptual color space for image processing" (2020)
_M1 = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_M2 = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)
_M2_INV = np.array(
    [
        [1.0, 0.3963377774, 0.2158037573],
        [1.0, -0.1055613458, -0.0638541728],
        [1.0, -0.0894841775, -1.2914855480],
    ]
)
_M1_INV = np.array(
    [
        [4.0767416621, -3.3077115913, 0.2309699292],
        [-1.2684380046, 2.6097574011, -0.3413193965],
        [-0.0041960863, -0.7034186147, 1.7076147010],
    ]
)
_OKLAB_SCALE = 100.0


def _srgb_to_linear(c):
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(c):
    c = np.clip(c, 0.0, None)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1.0 / 2.4) - 0.055)


def to_space(colors, space: str) -> np.ndarray:
    """(n, C) uint8 sRGB(A) colours -> (n, C) float64 clustering coordinates."""
    rgb = np.asarray(colors, dtype=np.float64)
    if rgb.shape[1] == 4:
        a = rgb[:, 3:4]
        return np.concatenate([rgb[:, :3] * (a / 255.0), a], axis=1)
    if space == "rgb":
        return rgb
    if space == "lab":
        from skimage.color import rgb2lab

        return rgb2lab((rgb / 255.0)[None]).reshape(-1, 3).astype(np.float64)
    lin = _srgb_to_linear(rgb / 255.0)
    lms = np.cbrt(lin @ _M1.T)
    return (lms @ _M2.T) * _OKLAB_SCALE


def to_rgb_float(points, space: str) -> np.ndarray:
    """Clustering coordinates -> sRGB(A) float64 in 0..255 (clipped, not rounded)."""
    p = np.asarray(points, dtype=np.float64)
    if p.shape[1] == 4:
        a = np.clip(p[:, 3:4], 0.0, 255.0)
        safe = np.where(a > 0, a, 1.0)
        rgb = np.where(a > 0, p[:, :3] * 255.0 / safe, 0.0)
        return np.clip(np.concatenate([rgb, a], axis=1), 0.0, 255.0)
    if space == "rgb":
        return np.clip(p, 0.0, 255.0)
    if space == "lab":
        from skimage.color import lab2rgb

        return np.clip(lab2rgb(p[None]).reshape(-1, 3) * 255.0, 0.0, 255.0)
    lms = (p / _OKLAB_SCALE) @ _M2_INV.T
    lin = (lms**3) @ _M1_INV.T
    return np.clip(_linear_to_srgb(lin) * 255.0, 0.0, 255.0)

