"""The ``pca-rows`` codec: the study's row PCA written as a real file.

Per colour channel the file holds the column means, the ``n`` principal axes
(n x W) and the scores of every row (H x n), each quantized with a uniform
step and entropy coded (adaptive Exp-Golomb on :mod:`imcompress.entropy`'s range coder).

Choosing the steps (measured, see docs/FORMAT.md): for a uniform quantizer
with step D the error variance is D**2 / 12. Score errors spread over the W
columns through orthonormal axes, adding ``D_s = n * Ds**2 / (12 W)`` to the
MSE; axis errors add ``D_v = E_row * Dv**2 / 12`` where E_row is the mean
energy of a row's scores. Equal rate-distortion slopes over the H*n scores
and n*W axis values give ``D_s : D_v = H : W``; the total is set to
:data:`DISTORTION_FRACTION` of the PCA truncation MSE.
"""

from __future__ import annotations

import struct

import numpy as np

from .._errors import CorruptFileError, InputError, UsageError
from .._validation import check_image, to_uint8
from ..codecs._base import Codec, Option, Slider, register_codec
from ._pca import RowPCA

__all__ = ["RowPCACodec", "DISTORTION_FRACTION"]

#: Quantization adds this fraction of the truncation MSE of the float PCA
#: (chosen by measuring rate-distortion on the sample and Kodak photos).
DISTORTION_FRACTION = 0.1
#: The mean rows are stored with this step (in 0..255 units).
MEAN_STEP = 1.0 / 16.0
#: Smallest quantization MSE aimed at when the PCA is (nearly) exact.
_MIN_MSE = 0.02
_N_BANDS = 16  # separate adaptive models for the first components
_RPAR = struct.Struct("<BB3H3f3f")
_CODER_V1 = 1
_FLAG_ALPHA = 1


def _zigzag(q):
    q = np.asarray(q, dtype=np.int64)
    return np.where(q >= 0, 2 * q, -2 * q - 1)


def _unzigzag(u):
    u = np.asarray(u, dtype=np.int64)
    return np.where(u % 2 == 0, u // 2, -(u + 1) // 2)


def _bands(n_rows, n_cols, offset, by_row):
    """Model set of every value of an (n_rows, n_cols) array, by component."""
    if by_row:  # components: one component per row
        band = np.minimum(np.arange(n_rows), _N_BANDS - 1)
        return np.repeat(band, n_cols) + offset
    band = np.minimum(np.arange(n_cols), _N_BANDS - 1)  # scores: one per column
    return np.repeat(band[:, None], n_rows, axis=1).ravel() + offset


def _sets_for(h, w, ns):
    parts = []
    for n in ns:
        parts.append(np.zeros(w, dtype=np.int64))  # mean deltas
        parts.append(_bands(n, w, 1, True))  # components, row-major
        parts.append(_bands(h, n, 1 + _N_BANDS, False))  # scores, component-major
    return np.concatenate(parts), 1 + 2 * _N_BANDS


@register_codec
class RowPCACodec(Codec):
    """Row PCA per channel, quantized and entropy coded.

    Parameters
    ----------
    n_components : int or tuple of 3 int, optional
        Components per channel (R, G, B). Default: ``variance=0.95`` when
        neither is given.
    variance : float in (0, 1], optional
        Choose ``n`` per channel by the study's explained-variance rule.
    """

    name = "pca-rows"
    method_id = 2
    rate_parameter = "n_components"
    label = "row PCA"
    rate_label = "n"
    rate_ladder = (1, 2, 4, 8, 16, 32, 48)
    slider = Slider("variance", (0.80, 0.85, 0.90, 0.95, 0.97, 0.99), "explained variance", "{:.0%}")
    options = (
        Option("n_components", ("--components",), "str",
               "components per channel, N or R,G,B", metavar="N|R,G,B"),
        Option("variance", ("--variance",), "float",
               "keep the components explaining this fraction of variance, per channel",
               default=0.95, metavar="T"),
    )

    def __init__(self, n_components=None, *, variance=None):
        self.n_components = n_components
        self.variance = variance

    @classmethod
    def from_options(cls, **values):
        if "n_components" in values and values["n_components"] is not None:
            text = str(values["n_components"])
            try:
                parts = [int(p) for p in text.split(",")]
            except ValueError:
                raise UsageError(f"--components {text!r} should be N or R,G,B integers, e.g. 40,30,20") from None
            if len(parts) not in (1, 3):
                raise UsageError(f"--components {text!r} should give 1 or 3 integers")
            values["n_components"] = parts[0] if len(parts) == 1 else tuple(parts)
        if values.get("n_components") is not None and values.get("variance") is not None:
            raise UsageError("give --components or --variance, not both")
        return cls(**values)

    # -- fitting ---------------------------------------------------------------
    def prepare(self, image):
        """The full row-PCA spectrum of ``image`` (a fitted :class:`RowPCA`).

        One SVD per channel; every number of components a target search tries
        is a slice of it (:meth:`RowPCA.select`).
        """
        image = check_image(image)
        _check_rows(image)
        return RowPCA(1).fit(_rgb(image))

    def _pca(self, image, prepared):
        n, t = self.n_components, self.variance
        if n is None and t is None:
            t = 0.95
        if prepared is None:
            return RowPCA(n, variance=t).fit(_rgb(image))
        if not isinstance(prepared, RowPCA) or prepared.shape_ != _rgb(image).shape:
            raise UsageError(
                "prepared= should be this codec's prepare(image) result for the same image"
            )
        return prepared.select(n, variance=t)

    def rate_candidates(self, image):
        _check_rows(image)
        return list(range(1, min(image.shape[0], image.shape[1]) + 1))

    def with_rate(self, value):
        return type(self)(int(value), variance=None)

    # -- writing ---------------------------------------------------------------
    def encode_sections(self, image, *, icc_profile=None, prepared=None):
        return self.encode_sections_with_pixels(image, icc_profile=icc_profile, prepared=prepared)[0]

    def encode_sections_with_pixels(self, image, *, icc_profile=None, prepared=None):
        # the pixels come from the decoder's own reconstruction (_reconstruct)
        # run on the very integers the file stores: bit-exact by construction
        from ..entropy import encode_uints  # numba's coder: imported to code a file, not with the registry

        _check_rows(image)
        h, w, channels = image.shape
        rgb = _rgb(image)
        pca = self._pca(image, prepared)
        values, steps_s, steps_v = [], [], []
        for c in range(3):
            x = rgb[:, :, c].astype(np.float64)
            mean = pca.mean_[c]
            comps = pca.components_[c]
            n = comps.shape[0]
            trunc_mse = _truncation_mse(x, mean, comps)
            target = max(DISTORTION_FRACTION * trunc_mse, _MIN_MSE)
            # split the target between scores and axes by equal R-D slopes:
            # D_s / (H n) = D_v / (n W), i.e. D_s : D_v = H : W
            mq = np.rint(mean / MEAN_STEP).astype(np.int64)
            mean_q = mq * MEAN_STEP
            scores = _centred_times(x, mean_q, comps.T)
            e_row = float(np.mean(np.sum(scores**2, axis=1)))
            d_s = target * h / (h + w)
            d_v = target * w / (h + w)
            ds = float(np.float32(np.sqrt(12.0 * w * d_s / n)))
            dv = float(np.float32(np.sqrt(12.0 * d_v / e_row))) if e_row > 0 else 1.0 / 4096.0
            vq = np.rint(comps / dv).astype(np.int64)
            comps_q = vq * dv
            # scores against the quantized axes and mean: what the decoder has
            sq = np.rint(_centred_times(x, mean_q, comps_q.T) / ds).astype(np.int64)
            del x
            values += [np.diff(mq, prepend=0), vq.ravel(), sq.T.ravel()]
            steps_s.append(ds)
            steps_v.append(dv)
        ns = tuple(int(c.shape[0]) for c in pca.components_)
        signed = np.concatenate(values)
        flat = _zigzag(signed)
        if flat.size and flat.max() >= 1 << 30:
            raise UsageError("a quantized value is out of range; the image is not 8-bit data")
        sets, n_sets = _sets_for(h, w, ns)
        flags = _FLAG_ALPHA if channels == 4 else 0
        sections = [
            (b"RPAR", _RPAR.pack(_CODER_V1, flags, *ns, *steps_s, *steps_v)),
            (b"RDAT", encode_uints(flat, sets, n_sets=n_sets)),
        ]
        pixels = _reconstruct(signed, ns, steps_s, steps_v, h, w, channels)
        if channels == 4:
            sections.append((b"ALPH", _encode_alpha(image[:, :, 3])))
            pixels[:, :, 3] = image[:, :, 3]  # stored losslessly
        if icc_profile:
            sections.append((b"ICCP", bytes(icc_profile)))
        return sections, pixels

    # -- reading ---------------------------------------------------------------
    @classmethod
    def _params(cls, container):
        raw = container.section(b"RPAR")
        if len(raw) != _RPAR.size:
            raise CorruptFileError(f"RPAR section has {len(raw)} bytes, expected {_RPAR.size}")
        coder, flags, *rest = _RPAR.unpack(raw)
        ns, ds, dv = tuple(rest[:3]), rest[3:6], rest[6:9]
        h, w = container.height, container.width
        if coder != _CODER_V1:
            raise CorruptFileError(f"unknown pca-rows coder {coder} (this version knows 1)")
        if flags & ~_FLAG_ALPHA:
            raise CorruptFileError(f"unknown RPAR flags {flags:#x}")
        if bool(flags & _FLAG_ALPHA) != (container.channels == 4):
            raise CorruptFileError("alpha flag disagrees with the header's channel count")
        for n in ns:
            if not 1 <= n <= min(h, w):
                raise CorruptFileError(f"invalid component count {n} (expected 1..min(H, W) = {min(h, w)})")
        for step in (*ds, *dv):
            if not (np.isfinite(step) and 0 < step < 1e6):
                raise CorruptFileError(f"invalid quantization step {step!r} in RPAR")
        return {"n_components": ns, "score_steps": ds, "axis_steps": dv, "alpha": bool(flags & _FLAG_ALPHA)}

    @classmethod
    def decode(cls, container):
        from ..entropy import decode_uints, max_decisions

        p = cls._params(container)
        h, w = container.height, container.width
        ns = p["n_components"]
        payload = container.section(b"RDAT")
        count = sum(w + n * w + h * n for n in ns)
        if count > max_decisions(len(payload)):
            raise CorruptFileError(
                f"RDAT holds {len(payload)} bytes, too few for the {count} values the header implies"
            )
        sets, n_sets = _sets_for(h, w, ns)
        flat = _unzigzag(decode_uints(payload, count, sets, n_sets=n_sets))
        out = _reconstruct(flat, ns, p["score_steps"], p["axis_steps"], h, w, container.channels)
        if container.channels == 4:
            out[:, :, 3] = _decode_alpha(container.section(b"ALPH"), h, w)
        return out

    @classmethod
    def describe(cls, container):
        p = cls._params(container)
        return {
            "n_components": list(p["n_components"]),
            "score_steps": [round(float(s), 6) for s in p["score_steps"]],
            "axis_steps": [round(float(s), 8) for s in p["axis_steps"]],
            "alpha": p["alpha"],
            "icc_profile": container.section(b"ICCP", required=False) is not None,
        }

    @classmethod
    def explain(cls, container, pixels):
        ns = cls._params(container)["n_components"]
        h, w = container.height, container.width
        stored = [n * h + n * w + w for n in ns]  # scores, components, column means
        return {"facts": [["n per channel (R/G/B)", "/".join(map(str, ns))],
                          ["stored values (R/G/B)", "/".join(f"{v:,}" for v in stored)],
                          ["stored values in all", f"{sum(stored):,}"]]}


#: Rows per band when the codec multiplies an image-sized matrix, so that its
#: float64 temporaries stay a band's size (a few MB) whatever the image.
_BAND_ROWS = 256


def _row_bands(h):
    return (slice(top, min(top + _BAND_ROWS, h)) for top in range(0, h, _BAND_ROWS))


def _centred_times(x, shift, matrix):
    """``(x - shift) @ matrix`` computed in bands of rows."""
    out = np.empty((x.shape[0], matrix.shape[1]))
    for rows in _row_bands(x.shape[0]):
        out[rows] = (x[rows] - shift) @ matrix
    return out


def _truncation_mse(x, mean, comps):
    """Mean squared error of the unquantized row PCA of one channel, in bands."""
    total = 0.0
    for rows in _row_bands(x.shape[0]):
        d = x[rows] - mean
        d -= (d @ comps.T) @ comps
        total += float(np.sum(d * d))
    return total / x.size


def _reconstruct(signed, ns, score_steps, axis_steps, h, w, channels):
    """Pixels of the stored integers (mean deltas, axes, scores per channel).

    The decoder's reconstruction; the encoder calls it on the integers it
    writes, so both get the same pixels bit for bit. Rows are rebuilt in bands.
    """
    out = np.empty((h, w, channels), dtype=np.uint8)
    pos = 0
    for c, n in enumerate(ns):
        mean = np.cumsum(signed[pos : pos + w]) * MEAN_STEP
        pos += w
        comps = signed[pos : pos + n * w].reshape(n, w) * float(axis_steps[c])
        pos += n * w
        scores = signed[pos : pos + h * n].reshape(n, h).T * float(score_steps[c])
        pos += h * n
        for rows in _row_bands(h):
            out[rows, :, c] = to_uint8(rows_times_axes(scores[rows], comps, mean))
    return out


#: Unit roundoff of float64.
_U = 2.0**-53


def rows_times_axes(scores, axes, mean, *, matmul=np.matmul):
    """``scores @ axes + mean``, rounding as FORMAT.md §4's fixed order does, at BLAS speed.

    The format fixes each value as ``((S_i0 V_0j + S_i1 V_1j) + ... +
    S_i,n-1 V_n-1,j) + m_j`` in float64, left to right, every product and sum
    rounded (no fused multiply-add), so that a decoder gives the same pixels on
    every machine. A BLAS product sums in its own order; it differs from the
    fixed order by at most ``2 gamma_(n+1) T`` with ``T = |S| @ |V| + |m|`` and
    ``gamma_k = k u / (1 - k u)`` (Higham, *Accuracy and Stability of Numerical
    Algorithms*, 3.1), which only matters where a value is that close to a
    rounding boundary ``k + 1/2``; those few values are summed again in the
    fixed order. ``T`` is bounded by the outer product of the rows' sums of
    ``|S|`` and the columns' maxima of ``|V|`` (plus ``|m|``), so the check
    costs no second matrix product: a looser bound only re-sums a few more values. So every value rounds (half to even) to the integer the fixed
    order gives; values far from a boundary may differ from it in their last
    bits. ``matmul`` is there for the tests (any summation order).

    Parameters
    ----------
    scores : ndarray of shape (R, n), float64
    axes : ndarray of shape (n, W), float64
    mean : ndarray of shape (W,), float64

    Returns
    -------
    ndarray of shape (R, W), float64

    Examples
    --------
    >>> s = np.array([[2.0**53, 1.0, -(2.0**53)]])
    >>> v = np.array([[1.0], [0.5], [1.0]])
    >>> float(rows_times_axes(s, v, np.array([101.0]))[0, 0])  # (2^53 + 0.5) rounds to 2^53 first
    101.0
    """
    x = matmul(scores, axes) + mean
    n = scores.shape[1]
    # T_ij <= (sum_k |S_ik|) (max_k |V_kj|) + |m_j|, with a margin of 2 for the bound's own rounding
    row_sums = np.abs(scores).sum(axis=1)
    col_max = np.abs(axes).max(axis=0)
    bound = (np.multiply.outer(row_sums, col_max) + np.abs(mean)) * (4.0 * (n + 2) * _U)
    i, j = np.nonzero(np.abs(x - np.floor(x) - 0.5) <= bound)
    if i.size:
        acc = scores[i, 0] * axes[0, j]
        for k in range(1, n):
            acc = acc + scores[i, k] * axes[k, j]
        x[i, j] = acc + mean[j]
    return x


def _encode_alpha(alpha):
    """Alpha plane, lossless: its distinct values + the palette-index coder."""
    from ..entropy import encode_indices

    values, inverse = np.unique(alpha, return_inverse=True)
    idx = inverse.reshape(alpha.shape).astype(np.uint8)
    pal = values.astype(np.uint8).reshape(-1, 1)
    return bytes([len(values) - 1]) + pal.tobytes() + encode_indices(idx, pal)


def _decode_alpha(raw, h, w):
    from ..entropy import decode_indices

    if len(raw) < 1:
        raise CorruptFileError("ALPH section is empty")
    k = raw[0] + 1
    if len(raw) < 1 + k:
        raise CorruptFileError(f"ALPH section too short for its {k} alpha values")
    pal = np.frombuffer(raw[1 : 1 + k], dtype=np.uint8).reshape(k, 1)
    idx = decode_indices(raw[1 + k :], pal, h, w)
    return pal[idx, 0]


def _rgb(image):
    return image[:, :, :3] if image.shape[2] == 4 else image


def _check_rows(image) -> None:
    # the image, not an option, is what the user must change: exit 2, not 4
    shape = np.shape(image)
    if len(shape) == 3 and shape[0] < 2:
        raise InputError(
            f"image of {shape[1]}x{shape[0]} pixels has a single row; row PCA needs at least 2 rows "
            "(use method 'kmeans' or 'pca-patch')"
        )
