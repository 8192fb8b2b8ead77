"""The encoder's view of its input: coded planes made band by band from the uint8 image.

The bitstream-2 encoder holds no whole float64 plane: the search, the
deblocking-strength search and the chroma-layout test ask for the rows they
work on and get exactly the values the whole-plane conversion gives (the
same elementwise float64 operations: :func:`ycbcr_plane`,
:func:`downsample2`, edge replication into the padding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._transform import downsample2, ycbcr_plane

__all__ = ["SourcePlane"]


@dataclass(frozen=True)
class SourcePlane:
    """Plane ``index`` (0 Y, 1 Cb, 2 Cr, 3 alpha) of ``image`` as coded, padded to ``shape``.

    Chroma is 2 x 2 averaged when ``subsample``; values are centred on 0
    (128 subtracted) and the padding replicates the last row and column.
    """

    image: np.ndarray
    index: int
    subsample: bool
    shape: tuple

    @property
    def size(self) -> tuple:
        """(rows, cols) before padding."""
        h, w = self.image.shape[:2]
        if self.subsample and self.index in (1, 2):
            return (h + 1) // 2, (w + 1) // 2
        return h, w

    def rows(self, y0: int, y1: int) -> np.ndarray:
        """Rows ``y0 .. y1`` of the padded plane, a new C-contiguous float64 array."""
        ph, pw = self.size
        a, b = min(y0, ph - 1), min(y1, ph)
        core = self._unpadded(a, b)
        if y1 > ph:  # rows below the image repeat its last row
            core = core[np.minimum(np.arange(y0, y1), ph - 1) - a]
        if self.shape[1] > pw:
            core = np.pad(core, ((0, 0), (0, self.shape[1] - pw)), mode="edge")
        return np.ascontiguousarray(core)

    def full(self) -> np.ndarray:
        """The whole padded plane (small images: tools and tests)."""
        return self.rows(0, self.shape[0])

    def _unpadded(self, a, b):
        img, i = self.image, self.index
        if i == 3:
            return img[a:b, :, 3].astype(np.float64) - 128.0
        if self.subsample and i in (1, 2):
            return downsample2(ycbcr_plane(img[2 * a: min(2 * b, img.shape[0])], i))
        return ycbcr_plane(img[a:b], i)
