"""Bitstream 2 of pca-patch: intra prediction, quadtree partition, per-size DCT.

:class:`IntraEncoder` has the interface of the version-1 ``Encoder``
(``encode(step)`` and ``fit_bytes(budget)``); :func:`decode_intra` (in
``_intra_decoder``, which imports none of the encoder) is its decoder.
Planes: Y, then Cb and Cr (4:2:0 or 4:4:4; chroma may be predicted from the
luma reconstruction), then alpha; all in one range-coded stream,
one context model per plane kind. Layout in docs/FORMAT.md.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from .._errors import QualityError
from .._threads import max_threads
from ..codecs import Reconstruction
from ..entropy import enc_finish, enc_new, enc_reserve, model_new
from ._blockcoder import N_CONTEXTS2, cost_table, scan_tables
from ._deblock import deblock_tree_bands
from ._encoder import best_strength, fit_bytes
from ._intra import SCALE
from ._intra_decoder import decode_intra, image_from_recs, padded_shapes
from ._params import CHROMA, IntraParams, IntraPlaneParams, pack_params, parse_params, plane_kind
from ._quantize import CHROMA_FACTOR, lagrangian
from ._output import PIPELINE_MIN_PIXELS, band_rows, chroma_rows
from ._search import (KNOB_COARSE, KNOB_FAST_DCT, KNOB_MPM_FULL, KNOB_SAD_ROWS, KNOB_SPLIT_FLOOR, LEVEL_DTYPE,
                      N_KNOBS, PlaneScratch, code_rows, encode_rows, even_odd_tables)
from ._source import SourcePlane
from ._tree import MAP_DTYPE, REC_DTYPE, dct_stack

__all__ = ["Encoding", "IntraEncoder", "SearchSettings", "decode_intra", "image_from_recs", "padded_shapes"]

#: Lagrangian of the search, in step**2 per bit.
LAMBDA = 0.12
#: Deadzone rounding offset of the search's quantizer.
ROUND = 0.40
#: Reconstruction offset of nonzero levels (1/256 of a step).
RHO = 0
#: Below the first ratio of (what 4:2:0 loses) to (chroma quantization
#: noise) only 4:2:0 is tried, above the second only 4:4:4; between, both are
#: encoded and the lower D + lambda R kept.
_SUBSAMPLE_BOTH = (0.6, 8.0)


#: Speed levels 6..9: coarse-to-fine mode ranking, fewer modes in full, early stop of the
#: partition search on cheap leaves, analyses on one strip of rows in four (SearchSettings).
_FAST_LEVELS = (
    {"n_cand": 2, "coarse": True, "split_floor": 8, "fast_dct": True},
    {"n_cand": 2, "coarse": True, "split_floor": 16, "analysis_stride": 4, "fast_dct": True},
    {"n_cand": 1, "coarse": True, "split_floor": 16, "analysis_stride": 4, "sad_rows": 2, "fast_dct": True},
    {"n_cand": 1, "coarse": True, "split_floor": 32, "analysis_stride": 4, "sad_rows": 2, "log2min": 3,
     "fast_dct": True},
)


@dataclass(frozen=True)
class SearchSettings:
    """What the encoder may use; the defaults follow ``speed``, the rest serve ablations.

    ``n_cand``: modes fully tried besides the most probable ones; ``prune``:
    leaves that code no level are not split further; ``modes``: the allowed
    prediction modes (None: all 35); ``cfl``: chroma from luma; block sides
    ``2**log2min .. 2**log2max``; ``deblock``: let the filter be chosen.
    The speed levels' shortcuts (off by default): ``coarse``: rank planar,
    DC, every fourth angle and the most probable modes, then refine around
    the best angle; ``mpm_full``: try the most probable modes in full
    whatever their rank; ``sad_rows``: the ranking's SAD reads every
    ``sad_rows``-th row of blocks of 16 and up; ``split_floor`` f > 0: a leaf
    whose J is below f / 64 of lambda per sample is not split;
    ``analysis_stride`` k > 1: the deblocking-strength search and the 4:2:0
    test read one strip of rows in k on large planes; ``fast_dct``: the
    candidates' forward DCT by even-odd folding (half the multiplications,
    rounded differently: the reconstructions still use the exact inverse,
    so files stay exact; only near-ties between candidates can go the other
    way). ``threads``: 2 lets
    Cb and Cr be searched beside luma (same bytes as 1).
    """

    n_cand: int = 3
    prune: bool = True
    modes: tuple | None = None
    cfl: bool = True
    log2max: int = 5
    log2min: int = 2
    deblock: bool = True
    coarse: bool = False
    mpm_full: bool = True
    sad_rows: int = 1
    split_floor: int = 0
    analysis_stride: int = 1
    fast_dct: bool = False
    threads: int = 2

    @classmethod
    def for_speed(cls, speed: int) -> "SearchSettings":
        """The preset of speed level 0..9 (docs/pca-patch.md has each level's time and BD-rate)."""
        if speed <= 5:
            return cls(n_cand=(8, 6, 5, 4, 3, 3)[speed], prune=speed >= 4)
        return cls(**_FAST_LEVELS[speed - 6])

    def knobs(self):
        """The speed knobs as the search's int64 array (indices ``KNOB_*`` of ``_search``)."""
        k = np.zeros(N_KNOBS, dtype=np.int64)
        k[KNOB_COARSE], k[KNOB_MPM_FULL] = self.coarse, self.mpm_full
        k[KNOB_SAD_ROWS], k[KNOB_SPLIT_FLOOR] = self.sad_rows, self.split_floor
        k[KNOB_FAST_DCT] = self.fast_dct
        return k

    def mode_mask(self):
        mask = np.ones(35, dtype=np.bool_)
        if self.modes is not None:
            mask[:] = False
            mask[list(self.modes)] = True
        return mask


#: Output bytes reserved per sample of a row of root blocks before the search
#: codes it (levels are bounded: this is far above what any image needs).
_RESERVE_PER_SAMPLE = 8


@dataclass(frozen=True)
class _Search:
    """What every row of every plane's search reads (tables, settings, planes), shared by the threads."""

    sources: list
    params: list
    settings: SearchSettings
    recs: list
    maps: list
    sub: bool
    reserve: int
    tab: np.ndarray = field(default_factory=cost_table)
    scans: tuple = field(default_factory=scan_tables)
    dct: np.ndarray = field(default_factory=dct_stack)
    ct: np.ndarray = field(default_factory=lambda: even_odd_tables(dct_stack()))

    def plane(self, i, st, out, model, levels=None, before_row=None, after_row=None):
        """Search and code plane ``i`` a row of root blocks at a time into ``st``/``out`` (returned, grown
        as needed; an empty ``out`` codes nothing but still adapts ``model``). ``levels``: a whole-plane
        level array to keep the decisions in (for :meth:`replay`); ``before_row(top)`` /
        ``after_row(bottom)``: called around each row."""
        src, (kind, step, pl) = self.sources[i], self.params[i]
        chroma = kind == CHROMA
        luma = self.recs[0] if chroma else self.recs[i]
        root = 1 << pl.log2max
        sc = PlaneScratch.new(src.shape, root, st, MAP_DTYPE)
        cfg = self.settings
        for top in range(0, src.shape[0], root):
            if before_row is not None:
                before_row(top)
            if len(out):
                out = enc_reserve(st, out, self.reserve * root * src.shape[1] + 64)
            levp = sc.levp if levels is None else levels[top:top + root]
            encode_rows(st, out, model, src.rows(top, top + root), top, self.recs[i], self.maps[i], sc.done, sc.cdone,
                        sc.cmaps, levp, sc.ref, sc.dst, sc.dout, pl.log2max, pl.log2min, step, pl.rho / 256.0,
                        LAMBDA * step * step, chroma, luma, self.sub and chroma, cfg.n_cand, cfg.prune, self.tab,
                        *self.scans, self.dct, self.ct, ROUND, cfg.mode_mask(), cfg.cfl, cfg.knobs())
            if after_row is not None:
                after_row(top + root)
        return out

    def strength(self, i):
        """Plane ``i``'s deblocking strength, by its squared error against the source (:func:`best_strength`;
        0 when the settings keep the filter off); reads only the plane's finished reconstruction."""
        cfg = self.settings
        if not cfg.deblock:
            return 0
        rec, size_map, src, step = self.recs[i], self.maps[i][0], self.sources[i], self.params[i][1]
        return best_strength(lambda ss: deblock_errors(rec, size_map, step, ss, src, cfg.analysis_stride))

    def replay(self, i, st, out, model, levels):
        """Code plane ``i``'s decisions (its maps and ``levels``, left by :meth:`plane`) as :meth:`plane`
        coded them: the same calls of the coder, so the same bytes."""
        shape, (kind, _, pl) = self.sources[i].shape, self.params[i]
        root = 1 << pl.log2max
        units = (shape[0] >> 2, shape[1] >> 2)
        cdone, cmaps = np.zeros(units, dtype=np.bool_), np.zeros((4,) + units, dtype=MAP_DTYPE)
        for top in range(0, shape[0], root):
            out = enc_reserve(st, out, self.reserve * root * shape[1] + 64)
            code_rows(st, out, model, self.maps[i], cdone, cmaps, levels[top:top + root], top, pl.log2max, pl.log2min,
                      kind == CHROMA, self.tab, *self.scans)
        return out


def _encode_planes(search: _Search, threads: int, deblock: bool = False):
    """Search and code every plane; the ``PDAT`` bytes and, with ``deblock``, each plane's deblocking
    strength (:meth:`_Search.strength`; else None).

    With ``threads`` > 1 and 4:2:0 chroma, Cb and Cr are searched in a second thread while luma is,
    each chroma row once the luma rows its chroma-from-luma prediction reads are final; the chroma
    model adapts there exactly as in the sequential order (it starts fresh at Cb either way), and
    the decisions are then coded into the stream after luma. Cr's search can start only when Cb's
    ends (one model), so it runs after luma's: meanwhile this thread chooses luma's and Cb's
    strengths and codes Cb, and the second thread chooses Cr's after Cr. The bytes and strengths
    are the sequential ones.
    """
    st = enc_new()
    out = np.empty(1 << 16, dtype=np.uint8)
    models = {}
    n = len(search.sources)
    kinds = [search.params[i][0] for i in range(n)]
    strengths = [None] * n
    if threads > 1 and search.sub and n >= 3:
        levels = {i: np.zeros(search.sources[i].shape, dtype=LEVEL_DTYPE) for i in (1, 2)}
        luma_h = search.sources[0].shape[0]
        progress = threading.Condition()
        state = {"luma": 0, "chroma": 0, "error": None}

        def luma_done(bottom):
            with progress:
                state["luma"] = bottom
                progress.notify_all()

        def wait_luma(top):  # chroma rows top .. top + root read luma rows < 2 (top + root)
            need = min(2 * (top + (1 << search.params[1][2].log2max)), luma_h)
            with progress:
                progress.wait_for(lambda: state["luma"] >= need or state["error"] is not None)
            if state["error"] is not None:
                raise RuntimeError("luma search failed")

        def chroma():
            try:
                model = model_new(N_CONTEXTS2)
                for i in (1, 2):
                    search.plane(i, enc_new(), np.empty(0, dtype=np.uint8), model, levels[i], before_row=wait_luma)
                    with progress:
                        state["chroma"] = i
                        progress.notify_all()
                if deblock:
                    strengths[2] = search.strength(2)
            except BaseException as exc:  # re-raised in the caller's thread
                with progress:
                    state["error"] = exc
                    progress.notify_all()

        worker = threading.Thread(target=chroma, name="pca-patch chroma search")
        worker.start()
        try:
            out = search.plane(0, st, out, models.setdefault(kinds[0], model_new(N_CONTEXTS2)), after_row=luma_done)
            if deblock:
                strengths[0] = search.strength(0)
            for i in (1, 2):
                with progress:
                    progress.wait_for(lambda i=i: state["chroma"] >= i or state["error"] is not None)
                if state["error"] is not None:
                    break
                out = search.replay(i, st, out, models.setdefault(kinds[i], model_new(N_CONTEXTS2)), levels.pop(i))
                if deblock and i == 1:
                    strengths[1] = search.strength(1)
        except BaseException:
            with progress:
                state["error"] = state["error"] or RuntimeError("luma search failed")
                progress.notify_all()
            worker.join()
            raise
        worker.join()
        if state["error"] is not None:
            raise state["error"]
        rest = range(3, n)
    else:
        rest = range(n)
    for i in rest:
        out = search.plane(i, st, out, models.setdefault(kinds[i], model_new(N_CONTEXTS2)))
    if deblock:
        todo = [i for i in range(n) if strengths[i] is None]
        h, w = search.sources[0].size
        if len(todo) > 1 and todo[0] == 0 and h * w >= PIPELINE_MIN_PIXELS and threads > 1:
            # the planes' strengths are independent: luma here, the others in a second thread
            # (the deblocking kernels release the GIL); the same strengths as in order
            with ThreadPoolExecutor(1) as pool:
                others = pool.submit(lambda: [search.strength(i) for i in todo[1:]])
                strengths[0] = search.strength(0)
                for i, s in zip(todo[1:], others.result()):
                    strengths[i] = s
        else:
            for i in todo:
                strengths[i] = search.strength(i)
    out = enc_reserve(st, out, 64)
    size = enc_finish(st, out)
    enc_reserve(st, out, 0)  # raises if a row outgrew its reservation
    return out[:size].tobytes(), (tuple(strengths) if deblock else None)


@dataclass(frozen=True)
class SearchResult:
    """What :meth:`IntraEncoder.search` produced: the source planes (:class:`SourcePlane`),
    their steps, reconstructions (1/SCALE units), unit maps (size, mode,
    alpha, cbf), the ``PDAT`` stream and, when asked for, each plane's
    deblocking strength (else None)."""

    sources: list
    steps: list
    recs: list
    maps: list
    data: bytes
    strengths: tuple | None = None


@dataclass(frozen=True)
class Encoding:
    """One file the encoder made: its sections, size, and what the decoder will rebuild."""

    sections: list
    nbytes: int
    prm: IntraParams
    result: SearchResult

    def pixels(self, shape) -> np.ndarray:
        """The (H, W, C) uint8 image every decoder of ``sections`` returns (from the search's own
        reconstructions: the decoder rebuilds the same integers)."""
        return image_from_recs(self.result.recs, [m[0] for m in self.result.maps], self.prm, shape)

    def reconstruction(self, image) -> Reconstruction:
        """:meth:`pixels` for ``image`` with their mean squared error against it, exact (an integer sum of
        squares over the pixel count: the value ``metrics.mse`` gives)."""
        pixels = self.pixels(image.shape)
        return Reconstruction(pixels, _sse(image, pixels) / image.size)


@njit(cache=True, nogil=True)
def _sse_kernel(a, b):
    total = 0
    for y in range(a.shape[0]):
        for x in range(a.shape[1]):
            for c in range(a.shape[2]):
                d = np.int64(a[y, x, c]) - np.int64(b[y, x, c])
                total += d * d
    return total


def _sse(a, b) -> float:
    """Sum of squared differences of two (H, W, C) uint8 images, exact (an integer sum), in one pass."""
    return float(_sse_kernel(a, b))


def subsampling_mse(image, stride=1) -> float:
    """Mean squared error per chroma sample of 4:2:0 alone (2 x 2 average, then :func:`upsample2`),
    Cb and Cr averaged; computed in bands of rows (with ``stride`` k > 1, on one band in k when
    that leaves four bands or more)."""
    h, w = image.shape[:2]
    shape = padded_shapes(h, w, 3, True)[1]
    step = band_rows(w, 2)
    errs = []
    for i in (1, 2):
        sub, full = SourcePlane(image, i, True, shape), SourcePlane(image, i, False, (h, w))
        total, rows = 0.0, 0
        for y0 in range(0, h, step * (stride if h >= 4 * step * stride else 1)):
            y1 = min(y0 + step, h)
            d = chroma_rows(sub.rows, y0, y1, h, w) - full.rows(y0, y1)
            total += float(np.sum(d * d))
            rows += y1 - y0
        errs.append(total / (rows * w))
    return float(np.mean(errs))


def deblock_errors(rec, size_map, step, strengths, source, stride=1) -> dict:
    """{strength: squared error against ``source``} of ``rec`` (1/SCALE units) deblocked at each
    strength, cropped to the source's size; one banded pass for all strengths.

    With ``stride`` k > 1 only one strip of ``_STRIP`` rows in every k is filtered and measured
    (each strip on its own: an estimate for the fast speed levels, not the decoder's exact planes), when
    the plane has four strips or more.
    """
    if stride <= 1 or rec.shape[0] < 4 * _STRIP * stride:  # fewer than four strips: measure it all
        return _strip_errors(rec, size_map, step, strengths, source, 0, rec.shape[0])
    totals = dict.fromkeys(strengths, 0.0)
    for y0 in range(0, min(rec.shape[0], source.size[0]), _STRIP * stride):
        part = _strip_errors(rec, size_map, step, strengths, source, y0, min(y0 + _STRIP, rec.shape[0]))
        for k, v in part.items():
            totals[k] += v
    return totals


#: Rows of each strip the fast levels' analyses look at (a multiple of the 64-row luma root row of 4:2:0).
_STRIP = 64


def _strip_errors(rec, size_map, step, strengths, source, top, bottom) -> dict:
    h, w = source.size
    band = band_rows(rec.shape[1], 4)
    filtered = [deblock_tree_bands(lambda y0, y1: rec[top + y0:top + y1] / SCALE, bottom - top,
                                   size_map[top >> 2:], step, s, band) for s in strengths]
    totals = [0.0] * len(strengths)
    y0 = top
    for parts in zip(*filtered):  # the same rows from every strength
        y1 = min(y0 + len(parts[0]), h)
        if y1 > y0:
            ref = source.rows(y0, y1)[:, :w]
            for k, part in enumerate(parts):
                d = part[: y1 - y0, :w] - ref
                totals[k] += float(np.sum(d * d))
        y0 += len(parts[0])
    return dict(zip(strengths, totals))


class IntraEncoder:
    """Encoder of bitstream 2 (same interface as the version-1 encoder).

    It keeps the uint8 image only: every float64 plane it works on is made
    band by band (:class:`SourcePlane`), reconstructions are int16 and unit
    maps int8, so its memory stays a few bytes per pixel on any image size.
    """

    def __init__(self, image, *, chroma, speed, settings=None):
        self.image = image
        self.h, self.w, self.nch = image.shape
        self.chroma = chroma
        self.speed = speed
        self.settings = settings or SearchSettings.for_speed(speed)
        self._sub_mse = None

    def _subsample_options(self, cstep):
        """Chroma layouts worth trying: 4:2:0 alone when what it loses is well below the
        chroma quantization noise, 4:4:4 alone when far above, else both."""
        if self.chroma != "auto":
            return [self.chroma == "420"]
        if self._sub_mse is None:
            self._sub_mse = subsampling_mse(self.image, self.settings.analysis_stride)
        ratio = self._sub_mse / (cstep * cstep / 12.0)
        if ratio < _SUBSAMPLE_BOTH[0]:
            return [True]
        if ratio > _SUBSAMPLE_BOTH[1]:
            return [False]
        return [True, False]

    def sources(self, subsample):
        """The coded planes (Y, Cb, Cr[, alpha]) as :class:`SourcePlane` objects."""
        shapes = padded_shapes(self.h, self.w, self.nch, subsample)
        return [SourcePlane(self.image, i, subsample, s) for i, s in enumerate(shapes)]

    def encode(self, step):
        """(sections, nbytes) of the file at luma step ``step``."""
        best = self.encode_full(step)
        return best.sections, best.nbytes

    def encode_full(self, step) -> Encoding:
        """The :class:`Encoding` at luma step ``step`` (chroma layout chosen by D + lambda R)."""
        step32 = float(np.float32(step))
        cstep32 = float(np.float32(step * CHROMA_FACTOR))
        options = self._subsample_options(cstep32)
        best = None
        for subsample in options:
            enc = self._encode(step32, cstep32, subsample)
            if len(options) == 1:
                return enc
            sse = _sse(enc.pixels(self.image.shape), self.image)
            j = sse + 3.0 * lagrangian(step32) * 8.0 * enc.nbytes
            if best is None or j < best[0]:
                best = (j, enc)
        return best[1]

    def search(self, step32, cstep32, subsample, *, deblock=False) -> SearchResult:
        """Run the search and the coder on every plane (the encoder's work, before deblocking); with
        ``deblock``, also choose each plane's deblocking strength."""
        sources = self.sources(subsample)
        cfg = self.settings
        steps = [cstep32 if plane_kind(i) == CHROMA else step32 for i in range(len(sources))]
        params = [(plane_kind(i), steps[i], IntraPlaneParams(cfg.log2max, cfg.log2min, RHO, 0))
                  for i in range(len(sources))]
        reserve = _RESERVE_PER_SAMPLE
        while True:
            recs = [np.zeros(p.shape, dtype=REC_DTYPE) for p in sources]
            maps = [np.zeros((4, p.shape[0] >> 2, p.shape[1] >> 2), dtype=MAP_DTYPE) for p in sources]
            try:
                threads = min(cfg.threads, max_threads())  # IMCOMPRESS_NUM_THREADS=1 (batch workers): one
                data, strengths = _encode_planes(_Search(sources, params, cfg, recs, maps, subsample, reserve),
                                                 threads, deblock)
            except OverflowError:  # pragma: no cover - no image comes near the first reservation
                reserve *= 4
                continue
            return SearchResult(sources, steps, recs, maps, data, strengths)

    def _encode(self, step32, cstep32, subsample) -> Encoding:
        res = self.search(step32, cstep32, subsample, deblock=True)
        cfg = self.settings
        final = [IntraPlaneParams(cfg.log2max, cfg.log2min, RHO, s) for s in res.strengths]
        prm = IntraParams(subsample, step32, cstep32, tuple(final))
        sections = [(b"PPAR", pack_params(prm)), (b"PDAT", res.data)]
        return Encoding(sections, sum(len(x[1]) + 8 for x in sections), prm, res)

    def fit_bytes(self, budget):
        """Best file with section bytes + container overhead <= budget.

        The file size jumps where the chroma layout changes, so with
        ``chroma="auto"`` each layout gets its own bisection on the step and
        the one with the smaller squared error wins.
        """
        if self.chroma != "auto":
            return fit_bytes(self, budget)
        best, error = None, None
        for layout in ("420", "444"):
            enc = IntraEncoder(self.image, chroma=layout, speed=self.speed, settings=self.settings)
            try:
                sections = fit_bytes(enc, budget)
            except QualityError:
                if layout == "444" and best is not None:
                    continue
                raise
            rec = decode_intra(sections[1][1], parse_params(sections[0][1], self.nch), self.image.shape)
            sse = _sse(rec, self.image)
            if best is None or sse < error:
                best, error = sections, sse
        return best
