"""PNG files written with DEFLATE on several cores, the same bytes whatever their number.

DEFLATE is zlib-ng's (the ``zlib-ng`` package: zlib's API and stream format,
with faster match finding): on the 12 MP photo's filtered RGB scanlines at
level 6, 1.3 CPU-seconds against zlib's 3.4 for a stream 0.75 % smaller; on its
palette indices at level 9, 0.98 s against 1.56 s, 0.6 % smaller (one stream
each, measured under load). Any zlib inflater reads the result.

One stream is compressed on one core; a 12 MP image at level 9 takes about a
second that way. Here the filtered scanlines are cut into fixed pieces of
:data:`PIECE` bytes (the cut depends on the image size only, never on the
number of threads), each piece is compressed in its own thread (zlib-ng, as
zlib, releases the GIL) as raw DEFLATE primed with the 32 KiB before it as dictionary (so
matches may reach back across the cut, as in pigz), ended by a sync flush that
byte-aligns it; the pieces, concatenated behind one zlib header and followed by
the Adler-32 of all the data, are one valid zlib stream. Measured on the 12 MP
photo's palette indices at level 9: 0.09 % smaller than one zlib stream
(benchmarks/png.py).

Because the cut is by byte offset only, a piece can be compressed as soon as
its scanlines and the 32 KiB before them are filtered, and a row can be
filtered as soon as it and the row above are final: :class:`PngWriter` does
both in worker threads while the caller is still making the rows below (the
``imcompress decompress`` command feeds it from the decoder), and
:func:`png_bytes` is the same writer given every row at once, so there is one
implementation and the same bytes either way.

Filters as Pillow chooses them: none for 8-bit palette images (indices are
labels, not intensities), per-row adaptive for RGB(A) and for palettes packed
1, 2 or 4 bits per pixel (the filter with the smallest sum of absolute signed
bytes, libpng's heuristic), a numba kernel compiled ahead of time where it
is built (:mod:`._filtering`: writing a PNG then imports no numba).
"""

from __future__ import annotations

import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from zlib_ng import zlib_ng as zlib

from .._errors import UsageError
from .._threads import max_threads

__all__ = ["PIECE", "PngWriter", "png_bytes"]

#: Bytes of filtered scanlines compressed per task.
PIECE = 1 << 20

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_WINDOW = 32768


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(tag)))


def _deflate_piece(raw, start: int, end: int, level: int, strategy: int) -> bytes:
    # raw DEFLATE of raw[start:end] primed with the 32 KiB before it, ended by a sync flush (the last: finished)
    if start:
        c = zlib.compressobj(level, zlib.DEFLATED, -15, 9, strategy,
                             zdict=bytes(raw[max(0, start - _WINDOW):start]))
    else:
        c = zlib.compressobj(level, zlib.DEFLATED, -15, 9, strategy)
    return c.compress(raw[start:end]) + c.flush(zlib.Z_FINISH if end == len(raw) else zlib.Z_SYNC_FLUSH)


def _zlib_header(level: int) -> bytes:
    # CMF (DEFLATE, 32 KiB window) and FLG with zlib's level class, as zlib writes them
    return bytes([0x78, 0xDA if level >= 7 else 0x9C if level >= 6 else 0x5E if level >= 2 else 0x01])


def _pack_bits(idx: np.ndarray, bits: int) -> np.ndarray:
    """(H, W) indices below 2**bits packed ``8 // bits`` per byte, first pixel in the high bits."""
    h, w = idx.shape
    per = 8 // bits
    padded = np.zeros((h, -(-w // per) * per), dtype=np.uint8)
    padded[:, :w] = idx
    groups = padded.reshape(h, -1, per)
    out = np.zeros(groups.shape[:2], dtype=np.uint8)
    for j in range(per):
        out |= groups[:, :, j] << np.uint8(8 - bits * (j + 1))
    return out


#: Rows filtered per task (every filter reads the unfiltered rows, so a band is independent).
_BAND = 64


def _check_level(level) -> None:
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or not 1 <= level <= 9:
        raise UsageError(f"level={level!r} should be a zlib level 1..9")


def _check_palette(palette, shape) -> np.ndarray:
    pal = np.ascontiguousarray(palette, dtype=np.uint8)
    if pal.ndim != 2 or pal.shape[1] not in (3, 4) or not 1 <= pal.shape[0] <= 256:
        raise UsageError(f"palette of shape {pal.shape} should be (K, 3|4) with 1 <= K <= 256")
    if len(shape) != 2:
        raise UsageError(f"indices of shape {tuple(shape)} should be (H, W) with a palette")
    return pal


class PngWriter:
    """A PNG file made from an image's rows as they become final, filtered and compressed meanwhile.

    The rows are filtered and the :data:`PIECE`-byte pieces of filtered
    scanlines compressed (see the module notes) in worker threads as soon
    as their rows, and the 32 KiB of scanlines before them, are final, while
    the caller makes the rows below; the file is :func:`png_bytes`'s, byte
    for byte, whatever the calls and the threads (:func:`png_bytes` is this
    writer fed all rows at once).

    Parameters
    ----------
    shape : tuple (H, W, 3|4), or (H, W) with ``palette``
        Shape of the pixel array that :meth:`rows` is given.
    palette, icc_profile, level, threads
        As :func:`png_bytes`.

    Notes
    -----
    Call :meth:`rows` with the same array each time, rows ``0 .. stop - 1``
    final and ``stop`` increasing, then :meth:`finish`. Used as a context
    manager, leaving the block (on an error too) stops the worker threads;
    nothing is written anywhere before :meth:`finish` returns the bytes.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    >>> with PngWriter(img.shape, level=6) as png:
    ...     png.rows(img, 2)
    ...     png.rows(img, 4)
    ...     data = png.finish()
    >>> data == png_bytes(img, level=6)
    True
    """

    def __init__(self, shape, *, palette=None, icc_profile=None, level: int = 9, threads: int | None = None):
        _check_level(level)
        shape = tuple(int(s) for s in shape)
        if palette is not None:
            self._palette = _check_palette(palette, shape)
            k = self._palette.shape[0]
            self._bits = 1 if k <= 2 else 2 if k <= 4 else 4 if k <= 16 else 8
            h, w = shape
            self._row_bytes = -(-w * self._bits // 8)
            self._bpp = 1
            color_type = 3
        else:
            if len(shape) != 3 or shape[2] not in (3, 4):
                raise UsageError(f"pixels of shape {shape} should be (H, W, 3|4), or (H, W) with a palette")
            self._palette, self._bits = None, 8
            h, w, c = shape
            self._row_bytes, self._bpp = w * c, c
            color_type = 2 if c == 3 else 6
        if h < 1 or w < 1:
            raise UsageError(f"pixels of shape {shape} should be non-empty uint8")
        self._shape, self._level = shape, level
        # Pillow's choice: no filter on 8-bit palette indices, adaptive ones on everything else
        self._adaptive = self._bits < 8 or palette is None
        head = [_SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, self._bits, color_type, 0, 0, 0))]
        if icc_profile:
            head.append(_chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(bytes(icc_profile))))
        if self._palette is not None:
            head.append(_chunk(b"PLTE", self._palette[:, :3].tobytes()))
            if self._palette.shape[1] == 4:
                head.append(_chunk(b"tRNS", self._palette[:, 3].tobytes()))
        self._head = head
        self._raw = np.empty((h, self._row_bytes + 1), dtype=np.uint8)  # the filtered scanlines
        self._flat = memoryview(self._raw.reshape(-1))
        self._piece = PIECE
        self._starts = range(0, self._raw.size, self._piece)
        workers = min(len(self._starts), max_threads() if threads is None else max(1, int(threads)))
        self._pool = ThreadPoolExecutor(workers) if workers > 1 else None
        self._filtered = 0  # rows handed to filtering
        self._bands = []  # (first row, end row, future or None) of each filtering task
        self._parts = []  # compressed pieces (futures, or bytes without threads)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self) -> None:
        """Stop the worker threads (pending work is dropped); :meth:`finish` does it too."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def rows(self, pixels, stop: int) -> None:
        """Rows ``0 .. stop - 1`` of ``pixels`` (the whole array, of the writer's shape) are final."""
        h = self._shape[0]
        if (not isinstance(pixels, np.ndarray) or pixels.shape != self._shape or pixels.dtype != np.uint8
                or not pixels.flags.c_contiguous):
            raise UsageError(f"pixels of shape {getattr(pixels, 'shape', None)} and dtype "
                             f"{getattr(pixels, 'dtype', None)} should be a C-contiguous {self._shape} uint8 array")
        stop = min(int(stop), h)
        if stop <= self._filtered:
            return
        if self._palette is not None:
            top = int(pixels[self._filtered:stop].max())
            if top >= self._palette.shape[0]:
                raise UsageError(f"index {top} is outside the palette of {self._palette.shape[0]} colours")
        step = _BAND if self._pool is not None else stop
        for y0 in range(self._filtered, stop, step):
            y1 = min(y0 + step, stop)
            if self._pool is None:
                self._filter(pixels, y0, y1)
                self._bands.append((y0, y1, None))
            else:
                self._bands.append((y0, y1, self._pool.submit(self._filter, pixels, y0, y1)))
        self._filtered = stop
        n = self._raw.shape[1]
        ready = self._raw.size if stop == h else stop * n
        for start in self._starts[len(self._parts):]:
            if start + self._piece > ready and ready < self._raw.size:
                break
            if self._pool is None:
                self._parts.append(self._deflate(start))
                continue
            lo, hi = max(0, start - _WINDOW) // n, (min(start + self._piece, self._raw.size) - 1) // n + 1
            needs = [f for y0, y1, f in self._bands if y0 < hi and y1 > lo]
            self._parts.append(self._pool.submit(self._deflate, start, needs))
        # drop the bookkeeping of bands no later piece reads
        first = self._starts[len(self._parts)] if len(self._parts) < len(self._starts) else self._raw.size
        keep = max(0, first - _WINDOW) // n
        self._bands = [b for b in self._bands if b[1] > keep]

    def _filter(self, pixels, y0: int, y1: int) -> None:
        # rows y0 .. y1 - 1 of the filtered scanlines; reads row y0 - 1 of the pixels too
        out = self._raw
        if not self._adaptive:  # filter 0 (none) on every row
            out[y0:y1, 0] = 0
            out[y0:y1, 1:] = pixels[y0:y1]
            return
        from ._filtering import filter_rows

        if self._palette is None:
            filter_rows(pixels.reshape(self._shape[0], -1), self._bpp, y0, y1, out)
            return
        top = max(y0 - 1, 0)  # the packed row above is what the up, average and Paeth filters read
        filter_rows(_pack_bits(pixels[top:y1], self._bits), 1, y0 - top, y1 - top, out[top:y1])

    def _deflate(self, start: int, needs=()) -> bytes:
        for f in needs:
            f.result()
        # zlib's Z_FILTERED strategy for filtered bytes, as Pillow (1.7 % smaller on the 12 MP
        # photo's 4-bit indices, 13 % larger on unfiltered 8-bit ones)
        strategy = zlib.Z_FILTERED if self._adaptive else zlib.Z_DEFAULT_STRATEGY
        end = min(start + self._piece, self._raw.size)
        return _deflate_piece(self._flat, start, end, self._level, strategy)

    def finish(self) -> bytes:
        """The PNG file's bytes, once every row was given; stops the worker threads."""
        if self._filtered < self._shape[0]:
            raise UsageError(f"rows {self._filtered} .. {self._shape[0] - 1} were not given before finish()")
        try:
            parts = [p if isinstance(p, bytes) else p.result() for p in self._parts]
        finally:
            self.close()
        stream = [_zlib_header(self._level), *parts, struct.pack(">I", zlib.adler32(self._flat))]
        body = [_chunk(b"IDAT", stream[0] + stream[1])] + [_chunk(b"IDAT", p) for p in stream[2:-1] if p]
        body.append(_chunk(b"IDAT", stream[-1]))
        return b"".join(self._head + body + [_chunk(b"IEND", b"")])


def png_bytes(pixels, *, palette=None, icc_profile=None, level: int = 9, threads: int | None = None) -> bytes:
    """A PNG file of an RGB(A) image or of palette indices, DEFLATE on several cores.

    Parameters
    ----------
    pixels : ndarray of shape (H, W, 3|4) or, with ``palette``, (H, W), dtype uint8
    palette : ndarray of shape (K, 3|4), dtype uint8, optional
        Makes an indexed PNG (a tRNS chunk for RGBA palettes; 1, 2 or 4 bits
        per pixel for K <= 2, 4, 16); every index must be below K.
    icc_profile : bytes, optional
        Stored as an iCCP chunk.
    level : int, default=9
        zlib level 1..9.
    threads : int, optional
        Default :func:`imcompress._threads.max_threads`; the bytes do not depend on it.

    Returns
    -------
    bytes

    See Also
    --------
    PngWriter : the same file, made while the rows are still being made.

    Examples
    --------
    >>> import io, numpy as np
    >>> from PIL import Image
    >>> pal = np.array([[0, 0, 0], [255, 128, 0], [9, 9, 9]], dtype=np.uint8)
    >>> idx = (np.arange(35).reshape(5, 7) % 3).astype(np.uint8)
    >>> data = png_bytes(idx, palette=pal)
    >>> bool((np.asarray(Image.open(io.BytesIO(data)).convert("RGB")) == pal[idx]).all())
    True
    """
    _check_level(level)
    arr = np.ascontiguousarray(pixels)
    if arr.dtype != np.uint8 or arr.size == 0:
        raise UsageError(f"pixels of dtype {arr.dtype} and shape {arr.shape} should be non-empty uint8")
    if palette is not None:
        pal = _check_palette(palette, arr.shape)
        if int(arr.max()) >= pal.shape[0]:
            raise UsageError(f"index {int(arr.max())} is outside the palette of {pal.shape[0]} colours")
    with PngWriter(arr.shape, palette=palette, icc_profile=icc_profile, level=level, threads=threads) as png:
        png.rows(arr, arr.shape[0])
        return png.finish()
