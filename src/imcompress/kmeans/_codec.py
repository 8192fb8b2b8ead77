"""The ``kmeans`` codec: a K-colour palette plus an entropy-coded index plane.

The same quantization is written either as our ``.imc`` container or as an
optimized indexed PNG (like pngquant's output), and both decode to the same
pixels. The ``.imc`` index plane is coded by the shared palette-index coder
(:func:`imcompress.entropy.encode_indices`, specified in docs/FORMAT.md).
"""

from __future__ import annotations

import struct

import numpy as np

from .._errors import CorruptFileError, UsageError
from .._validation import check_image, check_scalar
from ..codecs._base import Codec, Option, Reconstruction, Slider, register_codec
from ._colors import palette_order
from ._png import auto_level, palette_png
from ._quantizer import KMeansQuantizer, PreparedColors, prepare_colors

__all__ = ["KMeansCodec", "palette_png", "parse_colors"]

#: KPAR section: coder, palette channels, K, flags, dither strength (1/1000).
_KPAR = struct.Struct("<BBHBH")
_CODER_CONTEXT_V1 = 1
_FLAG_DITHERED = 1
_FLAG_EXACT = 2
_KNOWN_FLAGS = _FLAG_DITHERED | _FLAG_EXACT
MAX_COLORS = 256


def parse_colors(colors) -> np.ndarray:
    """Colours as an (m, C) uint8 array, from an array or ``"#RRGGBB[AA],..."``.

    Examples
    --------
    >>> parse_colors("#ff0000, #00ff0080")
    Traceback (most recent call last):
    ...
    imcompress._errors.UsageError: fixed colours mix 6 and 8 hex digits; give all as #RRGGBB or all as #RRGGBBAA
    >>> parse_colors("#ff0000,#000000").tolist()
    [[255, 0, 0], [0, 0, 0]]
    """
    if not isinstance(colors, str):
        return np.asarray(colors)
    out = []
    for item in filter(None, (c.strip() for c in colors.split(","))):
        text = item[1:] if item.startswith("#") else item
        if len(text) not in (6, 8):
            raise UsageError(f"fixed colour {item!r} should be #RRGGBB or #RRGGBBAA")
        try:
            out.append([int(text[i : i + 2], 16) for i in range(0, len(text), 2)])
        except ValueError:
            raise UsageError(f"fixed colour {item!r} is not hexadecimal; write it as #RRGGBB") from None
    if not out:
        raise UsageError("fixed_colors is empty; give a comma list like '#ffffff,#000000'")
    if len({len(c) for c in out}) > 1:
        raise UsageError("fixed colours mix 6 and 8 hex digits; give all as #RRGGBB or all as #RRGGBBAA")
    return np.array(out, dtype=np.uint8)


def __getattr__(name):
    # the index coder (numba) is imported when first used, so that the registry
    # and palette-PNG output never import numba; its two functions stay reachable here
    if name in ("decode_indices", "encode_indices"):
        from .. import entropy

        return getattr(entropy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _pixels(palette, indices):
    """``palette[indices]``, the image a palette and its index plane stand for
    (``np.take``: the same array, in half the time of fancy indexing)."""
    return np.take(palette, indices, axis=0)


@register_codec
class KMeansCodec(Codec):
    """K-means colour quantization written as a palette + coded indices.

    Parameters
    ----------
    n_colors : int or "auto", default=16
        Palette size K, 2..256. ``"auto"`` picks the elbow of the inertia curve
        of K = 2, 4, ..., 32 (:func:`~imcompress.kmeans.kmeans_sweep`). When
        the image has at most K distinct colours they are used exactly
        (lossless).
    dither : float, optional
        Floyd–Steinberg error diffusion strength 0..1 (``KMeansQuantizer``'s
        ``dither``); not given means none.
    quality : str, optional
        pngquant-style ``"MIN-MAX"`` (0..100): the fewest colours reaching MAX
        (:func:`~imcompress.kmeans._quality.quantize_quality`); below MIN
        raises QualityError (exit 99). Overrides ``n_colors``.
    color_space, speed : optional
        Passed to ``KMeansQuantizer`` only when given.
    fixed_colors : str or array-like of shape (m, 3|4), optional
        Colours kept exactly in the palette: an array, or a comma list of
        ``#RRGGBB`` / ``#RRGGBBAA`` hex colours (the CLI's ``--fixed-colors``).
    random_state : int, default=0
    png_level : int, optional
        Effort of the palette-PNG writer: 0 is plain zlib level 9 on every core, 1..6 oxipng's
        levels; not given: 2 up to 4 MP, 0 above
        (:func:`~imcompress.kmeans.palette_png`).
    map_palette : str, path-like or array-like of shape (K, 3|4), optional
        A fixed palette (an image file, as pngquant's ``--map``, or an array):
        no K-means, every pixel gets its nearest entry
        (:func:`~imcompress.kmeans.map_to_palette`).
    """

    name = "kmeans"
    method_id = 1
    formats = ("imc", "png")
    default_format = "png"  # the format every viewer reads (issue 13)
    rate_parameter = "n_colors"
    label = "K-means"
    rate_label = "K"
    rate_ladder = (2, 4, 8, 16, 32, 64)
    slider = Slider("n_colors", tuple(range(2, 21, 2)), "colours K", "{:d}")
    options = (
        Option("n_colors", ("-k", "--colors"), "str", "palette size K (2..256) or 'auto' (elbow of a K sweep)",
               default="16", metavar="K|auto"),
        Option("dither", ("--dither",), "float", "Floyd-Steinberg dithering, strength 0..1 (alone: 1.0)",
               metavar="[STRENGTH]", flag_value=1.0),
        Option("quality", ("--quality",), "str",
               "pngquant-style MIN-MAX (0..100): the fewest colours reaching MAX, exit 99 below MIN",
               metavar="MIN-MAX"),
        Option("color_space", ("--color-space",), "str", "colour space of the clustering (rgb, lab, oklab)",
               metavar="SPACE"),
        Option("speed", ("--speed",), "int", "speed/quality trade-off of the quantizer (1 slow .. 10 fast)",
               metavar="N"),
        Option("fixed_colors", ("--fixed-colors",), "str",
               "colours kept exactly in the palette, comma list of #RRGGBB[AA]", metavar="LIST"),
        Option("random_state", ("--seed",), "int", "random seed of K-means", default=0, metavar="N"),
        Option("png_level", ("--png-level",), "int",
               "PNG optimizer effort 0..6 (0: zlib level 9; 1..6: oxipng)", default="2 up to 4 MP, 0 above",
               metavar="0..6"),
        Option("map_palette", ("--map",), "str",
               "quantize to the colours of this palette image (as pngquant --map) instead of K-means",
               metavar="PALETTE.png"),
    )

    def __init__(self, n_colors=16, *, dither=None, quality=None, color_space=None, speed=None,
                 fixed_colors=None, random_state=0, png_level=None, map_palette=None):
        # parameters only (scikit-learn's rule for __init__)
        self.n_colors, self.quality = n_colors, quality
        self.dither, self.fixed_colors = dither, fixed_colors
        self.color_space, self.speed, self.random_state = color_space, speed, random_state
        self.png_level, self.map_palette = png_level, map_palette

    @classmethod
    def from_options(cls, **values):
        if values.get("quality") is not None and values.get("n_colors") is not None:
            raise UsageError(
                "give -k/--colors or --quality, not both: --quality picks the number of colours itself"
            )
        if "n_colors" in values:
            text = str(values["n_colors"]).strip().lower()
            if text == "auto":
                values["n_colors"] = "auto"
            else:
                try:
                    values["n_colors"] = int(text)
                except ValueError:
                    raise UsageError(
                        f"--colors {values['n_colors']!r} should be an integer 2..256 or 'auto'"
                    ) from None
        if values.get("map_palette") is not None:
            clash = [flag for name, flag in (("n_colors", "-k/--colors"), ("quality", "--quality"),
                                             ("fixed_colors", "--fixed-colors")) if values.get(name) is not None]
            if clash:
                raise UsageError(f"give --map or {', '.join(clash)}, not both: --map fixes the palette")
        codec = cls(**values)
        codec._check_params()  # bad values fail before any input is read
        if codec.map_palette is not None:
            codec._mapped_palette()  # an unreadable palette fails before any input is read
        return codec

    # -- quantization -----------------------------------------------------------
    def _check_params(self):
        k = self.n_colors
        if k != "auto":
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
                raise UsageError(f"n_colors={k!r} should be an integer 2..256 or 'auto'")
            if not 2 <= k <= MAX_COLORS:
                raise UsageError(f"n_colors={k} should be in 2..{MAX_COLORS} (a palette holds at most 256)")
        if not isinstance(self.random_state, (np.random.Generator, np.random.RandomState)):
            check_scalar(self.random_state, "random_state", "int", min_val=0, max_val=2**32 - 1, allow_none=True)
        if self.dither is not None:
            d = check_scalar(self.dither, "dither", "real")
            if not 0.0 <= d <= 1.0:
                raise UsageError(f"dither={d} should be in 0..1")
        if self.fixed_colors is not None:
            parse_colors(self.fixed_colors)
        lv = self.png_level
        if lv is not None and (isinstance(lv, bool) or not isinstance(lv, (int, np.integer)) or not 0 <= lv <= 6):
            raise UsageError(f"png_level={lv!r} should be an integer 0..6 (0: zlib level 9, 1..6: oxipng)")
        if self.quality is None:
            return None
        from ._quality import parse_quality

        return parse_quality(self.quality)

    def _quantizer_options(self):
        kwargs = {name: getattr(self, name) for name in ("dither", "color_space", "speed")
                  if getattr(self, name) is not None}
        if self.fixed_colors is not None:
            kwargs["fixed_colors"] = parse_colors(self.fixed_colors)
        return kwargs

    def _quantizer(self, k):
        return KMeansQuantizer(int(k), random_state=self.random_state, **self._quantizer_options())

    def needs_jit(self, format):
        # the quantization, the .imc index coder and the PNG row filter (packed
        # palettes at png_level 0) run on their ahead-of-time kernels when those
        # are there (see _dispatch); dithering is numba's
        from ..entropy import indices_aot
        from ..io._filtering import filters_aot
        from ._dispatch import uses_aot

        return (bool(self.dither) or not uses_aot() or (format == "imc" and not indices_aot())
                or (format == "png" and not filters_aot()))

    @classmethod
    def decode_needs_jit(cls):
        from ..entropy import indices_aot

        return not indices_aot()

    def _fit_predict(self, image, k, prepared):
        """Palette, indices and, for undithered RGB, the exact MSE (else None)."""
        q = self._quantizer(k)
        indices = q.fit_predict(image, colors=prepared)
        # the quantizer's mse_ comes from its colour table: the same sum of integer
        # squared errors as a pass over the pixels, divided by the same count
        # (premultiplied for RGBA, so not the pixels' error there)
        err = q.mse_ if image.shape[2] == 3 and not q.dither else None
        return np.asarray(q.palette_, dtype=np.uint8), np.asarray(indices), err

    def prepare(self, image):
        """The image's colour table and histogram (:func:`prepare_colors`), built
        once for every K a target search tries."""
        q = self._quantizer(2)
        return prepare_colors(check_image(image), color_space=q.color_space, speed=q.speed)

    def _prepared(self, image, prepared):
        if prepared is None:
            return self.prepare(image)
        if not isinstance(prepared, PreparedColors) or prepared.table.shape != image.shape:
            raise UsageError("prepared= should be this codec's prepare(image) result for the same image")
        return prepared  # KMeansQuantizer.fit checks its color_space and speed

    def quantize(self, image: np.ndarray, *, prepared=None):
        """Quantize ``image``; the palette is in :func:`~imcompress.kmeans.palette_order`.

        The colour table is built once (or taken from ``prepared``, this
        codec's :meth:`prepare` of the same image) and serves the fit, the
        mapping of every pixel and the quality search.

        Returns
        -------
        palette : ndarray of shape (K, C), uint8
        indices : ndarray of shape (H, W), uint8
        info : dict
            ``n_colors`` (K used), ``exact`` (lossless palette), ``dithered``,
            ``mse``: the mean squared error of ``palette[indices]`` against the
            image when known from the colour table (as :func:`imcompress.metrics.mse`
            gives it, bit for bit), else None.
        """
        quality = self._check_params()
        image = check_image(image)
        if self.map_palette is not None:
            palette, indices = self._map(image)
            info = {"exact": False, "dithered": bool(self.dither), "n_colors": int(palette.shape[0]), "mse": None}
            return palette, indices, info
        prepared = self._prepared(image, prepared)
        table = prepared.table
        target_k = self.n_colors
        info = {"exact": False, "dithered": bool(self.dither), "mse": None}
        if quality is not None:
            palette, indices, _ = self._quality_search(image, quality, prepared)
        else:
            if target_k == "auto":
                target_k = self._auto_k(image, table)
            if table.n_colors <= target_k:
                # the image's own colours, stored in the order the quantizer uses
                order = palette_order(table.colors)
                rank = np.empty(order.size, dtype=np.uint8)
                rank[order] = np.arange(order.size)
                palette = np.ascontiguousarray(table.colors[order])
                indices = rank[table.inverse].reshape(image.shape[:2])
                info["exact"] = True
                info["dithered"] = False
                info["mse"] = 0.0
            else:
                palette, indices, info["mse"] = self._fit_predict(image, target_k, prepared)
        info["n_colors"] = int(palette.shape[0])
        return palette, np.asarray(indices, dtype=np.uint8), info

    def _mapped_palette(self):
        from ._palette import read_palette

        if isinstance(self.map_palette, (str, bytes, bytearray)) or hasattr(self.map_palette, "__fspath__"):
            return read_palette(self.map_palette)
        return np.ascontiguousarray(self.map_palette, dtype=np.uint8)

    def _map(self, image):
        from ._palette import map_to_palette

        palette = self._mapped_palette()
        if image.shape[2] == 3 and palette.shape[1] == 4:
            # an opaque image keeps its channels: it maps to the opaque entries
            palette = palette[palette[:, 3] == 255, :3]
            if palette.shape[0] == 0:
                raise UsageError("the --map palette has no opaque colour for this image without alpha")
        return palette, map_to_palette(image, palette, dither=self.dither or 0.0)

    def _auto_k(self, image, table):
        from ._sweep import kmeans_sweep

        ks = [k for k in range(2, 33, 2) if k < table.n_colors]
        if len(ks) < 3:
            return min(table.n_colors, MAX_COLORS)
        sweep = kmeans_sweep(image, ks, random_state=self.random_state)
        return int(sweep.elbow_k or 16)

    def _quality_search(self, image, quality, prepared):
        from ._quality import quantize_quality

        q = quantize_quality(prepared, quality[0], quality[1], random_state=self.random_state,
                             **self._quantizer_options())
        indices = q.predict(image, colors=prepared)
        return np.asarray(q.palette_, dtype=np.uint8), np.asarray(indices), int(q.palette_.shape[0])

    # -- the rate knob for --target-psnr / --max-bytes ---------------------------
    def rate_candidates(self, image):
        from ._colors import color_table

        n = color_table(image).n_colors
        return list(range(2, max(2, min(MAX_COLORS, n)) + 1))

    def with_rate(self, value):
        params = self.get_params()
        params["n_colors"] = int(value)
        params["quality"] = None
        return type(self)(**params)

    # -- writing ---------------------------------------------------------------
    def encode_sections(self, image, *, icc_profile=None, prepared=None):
        return self.encode_sections_with_pixels(image, icc_profile=icc_profile, prepared=prepared)[0]

    def encode_sections_with_pixels(self, image, *, icc_profile=None, prepared=None):
        # the index coder is lossless: the decoder returns palette[indices] exactly
        palette, indices, info = self.quantize(image, prepared=prepared)
        pixels = Reconstruction(_pixels(palette, indices), info["mse"])
        return self._sections(image, palette, indices, info, icc_profile), pixels

    def _sections(self, image, palette, indices, info, icc_profile):
        k, c = palette.shape
        if c != image.shape[2]:
            raise UsageError(f"palette has {c} channels but the image {image.shape[2]}")
        flags = (_FLAG_DITHERED if info.get("dithered") else 0) | (_FLAG_EXACT if info.get("exact") else 0)
        milli = int(round(1000 * float(self.dither))) if self.dither else 0
        from ..entropy import encode_indices  # numba's coder: not imported for palette PNGs

        sections = [
            (b"KPAR", _KPAR.pack(_CODER_CONTEXT_V1, c, k, flags, milli)),
            (b"PLTE", palette.tobytes()),
            (b"IDXS", encode_indices(indices, palette)),
        ]
        if icc_profile:
            sections.append((b"ICCP", bytes(icc_profile)))
        return sections

    def encode_format(self, image, *, format, icc_profile=None, prepared=None):
        return self.encode_format_with_pixels(image, format=format, icc_profile=icc_profile, prepared=prepared)[:2]

    def encode_format_with_pixels(self, image, *, format, icc_profile=None, prepared=None):
        # format is "png" (Codec.compress checked it is one of self.formats);
        # PNG is lossless, so its readers return palette[indices] exactly
        palette, indices, info = self.quantize(image, prepared=prepared)
        params = {
            "n_colors": info["n_colors"],
            "exact": info["exact"],
            "dither": float(self.dither) if info["dithered"] else None,
            "icc_profile": bool(icc_profile),
            "png_level": auto_level(indices.size) if self.png_level is None else int(self.png_level),
        }
        if self.map_palette is not None and not hasattr(self.map_palette, "shape"):
            params["map"] = str(self.map_palette)
        data = palette_png(palette, indices, icc_profile=icc_profile, level=params["png_level"])
        return data, params, Reconstruction(_pixels(palette, indices), info["mse"])

    # -- reading ---------------------------------------------------------------
    @classmethod
    def _params(cls, container):
        raw = container.section(b"KPAR")
        if len(raw) != _KPAR.size:
            raise CorruptFileError(f"KPAR section has {len(raw)} bytes, expected {_KPAR.size}")
        coder, c, k, flags, milli = _KPAR.unpack(raw)
        if coder != _CODER_CONTEXT_V1:
            raise CorruptFileError(f"unknown index coder {coder} in KPAR (this version knows 1)")
        if c != container.channels:
            raise CorruptFileError(f"palette has {c} channels but the header says {container.channels}")
        if not 1 <= k <= MAX_COLORS:
            raise CorruptFileError(f"invalid palette size K={k} (expected 1..{MAX_COLORS})")
        if flags & ~_KNOWN_FLAGS:
            raise CorruptFileError(f"unknown KPAR flags {flags:#x}")
        if milli > 1000:
            raise CorruptFileError(f"invalid dither strength {milli}/1000")
        return {"coder": coder, "channels": c, "n_colors": k, "flags": flags, "dither_milli": milli}

    @classmethod
    def _palette(cls, container, p):
        raw = container.section(b"PLTE")
        if len(raw) != p["n_colors"] * p["channels"]:
            raise CorruptFileError(
                f"PLTE has {len(raw)} bytes, expected K*C = {p['n_colors']}*{p['channels']}"
            )
        return np.frombuffer(raw, dtype=np.uint8).reshape(p["n_colors"], p["channels"])

    @classmethod
    def decode_indices(cls, container):
        """The (palette, indices) pair stored in a parsed container."""
        from ..entropy import decode_indices

        p = cls._params(container)
        palette = cls._palette(container, p)
        indices = decode_indices(container.section(b"IDXS"), palette, container.height, container.width)
        return palette, indices

    @classmethod
    def decode(cls, container):
        palette, indices = cls.decode_indices(container)
        return _pixels(palette, indices)

    @classmethod
    def describe(cls, container):
        p = cls._params(container)
        return {
            "n_colors": p["n_colors"],
            "exact": bool(p["flags"] & _FLAG_EXACT),
            "dither": p["dither_milli"] / 1000.0 if p["flags"] & _FLAG_DITHERED else None,
            "coder": "context-model-v1",
            "icc_profile": container.section(b"ICCP", required=False) is not None,
        }

    @classmethod
    def explain(cls, container, pixels):
        colours, counts = np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0, return_counts=True)
        order = np.argsort(-counts, kind="stable")
        share = counts / counts.sum()
        palette = [["#" + "".join(f"{v:02x}" for v in colours[i]), float(share[i])] for i in order]
        return {"facts": [["colours in the palette", str(len(colours))]], "palette": palette}

