"""The page's pictures, made to fit its size budget.

The report is one HTML file with every picture inside it as base64. Its
budget (:func:`page_budget`, docs/report.md): 2.5 MB for a 512 x 512 image
with every slider position, 6 MB for 1 megapixel. To fit, pictures that have
at most 256 colours (K-means files, plots) are stored losslessly as WebP, the
others as lossy WebP at the highest quality that fits; the quality, and each
preview's PSNR against the decoded file it shows, are written to
``metrics.json``, so the page never passes a preview's error off as the
method's.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np

__all__ = ["Preview", "page_budget", "encode_previews", "figure_data_uri"]

#: Page budget (bytes) at 512 x 512 and at 1 megapixel; linear in pixels in between.
BUDGET_512 = 2_500_000
BUDGET_1MP = 6_000_000
#: Lossy WebP qualities tried for the previews, best first.
PREVIEW_QUALITIES = (90, 82, 74, 66, 58, 50, 40)


def page_budget(n_pixels: int) -> int:
    """The most bytes ``index.html`` may have for an image of ``n_pixels`` (explored) pixels.

    Examples
    --------
    >>> page_budget(512 * 512), page_budget(1 << 20)
    (2500000, 6000000)
    """
    lo, hi = 512 * 512, 1 << 20
    t = min(max((n_pixels - lo) / (hi - lo), 0.0), 1.0)
    return int(BUDGET_512 + t * (BUDGET_1MP - BUDGET_512))


class Preview:
    """One picture of the page: its data URI and how faithful it is."""

    __slots__ = ("uri", "lossless", "quality", "psnr")

    def __init__(self, uri, lossless, quality, psnr):
        self.uri, self.lossless, self.quality, self.psnr = uri, lossless, quality, psnr

    def to_dict(self) -> dict:
        return {"format": "webp", "lossless": self.lossless, "quality": self.quality,
                "psnr_vs_file": None if self.lossless else self.psnr}


def _webp(image, *, quality=None) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    # effort settings measured on the 512 x 512 photo: within 1 % of the
    # slowest settings' size at a third of their time
    if quality is None:
        Image.fromarray(image).save(buf, "WEBP", lossless=True, quality=50, method=1)
    else:
        Image.fromarray(image).save(buf, "WEBP", quality=int(quality), method=2)
    return buf.getvalue()


def _decode(data) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _uri(data) -> str:
    return "data:image/webp;base64," + base64.b64encode(data).decode("ascii")


def _few_colours(image) -> bool:
    from ..metrics import unique_colors

    return unique_colors(image) <= 256


def encode_previews(original, images, budget: int):
    """WebP data URIs of ``original`` and of ``images`` in at most about ``budget`` bytes of base64.

    Images with at most 256 colours are lossless. The others are lossy at the
    first of :data:`PREVIEW_QUALITIES` that fits (the original lossless when
    that still fits, else lossy at a higher quality than the rest).

    Returns
    -------
    original : Preview
    previews : list of Preview
    """
    from ..metrics import psnr

    exact = [_few_colours(im) for im in images]
    lossless = {i: _webp(im) for i, im in enumerate(images) if exact[i]}
    orig_lossless = _webp(original)
    fixed = sum(len(d) for d in lossless.values())
    soft = [i for i in range(len(images)) if not exact[i]]
    probe = soft[::4]  # a sample predicts the total at a lower quality

    def b64(n):
        return 4 * math.ceil(n / 3)

    def fits(total, q):
        """The original's encoding that fits beside ``total`` bytes of previews, or None."""
        if b64(total + len(orig_lossless)) <= budget:
            return orig_lossless, None
        oq = min(100, q + 8)
        data = _webp(original, quality=oq)
        return (data, oq) if b64(total + len(data)) <= budget else None

    choice, lossy = None, {}
    qualities = list(PREVIEW_QUALITIES)
    while qualities:
        q = qualities.pop(0)
        lossy = {i: _webp(images[i], quality=q) for i in soft}
        found = fits(fixed + sum(len(d) for d in lossy.values()), q)
        if found is not None:
            choice = (q, *found)
            break
        # skip qualities the sample shows cannot fit
        while len(qualities) > 1 and probe:
            est = sum(len(_webp(images[i], quality=qualities[0])) for i in probe) * len(soft) / len(probe)
            if fits(fixed + int(est), qualities[0]) is not None:
                break
            qualities.pop(0)
    if choice is None:  # the smallest we make: say so rather than fail the report
        q = PREVIEW_QUALITIES[-1]
        lossy = {i: _webp(images[i], quality=q) for i in soft}
        choice = (q, _webp(original, quality=q), q)
    q, odata, oq = choice
    orig = Preview(_uri(odata), oq is None, oq, math.inf if oq is None else psnr(original, _decode(odata)))
    out = []
    for i, im in enumerate(images):
        if exact[i]:
            out.append(Preview(_uri(lossless[i]), True, None, math.inf))
        else:
            data = lossy[i]
            out.append(Preview(_uri(data), False, q, psnr(im, _decode(data))))
    return orig, out


#: Quality of the page's copies of figures that show photographs.
FIGURE_QUALITY = 75


def figure_data_uri(png: bytes) -> str:
    """A figure's PNG as the page embeds it: lossless WebP for plots (few colours, at
    most 1024 in a 1-in-16 sample, and no more than 1.5 times the lossy size), else lossy
    WebP at :data:`FIGURE_QUALITY` (figures of photographs); ``figures/`` keeps the PNG."""
    from ..metrics import unique_colors

    image = _decode(png)
    lossy = _webp(image, quality=FIGURE_QUALITY)
    if unique_colors(image[::4, ::4]) <= 1024:
        exact = _webp(image)
        if len(exact) <= 1.5 * len(lossy):
            return _uri(exact)
    return _uri(lossy)
