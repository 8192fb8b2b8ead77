"""Regenerate the conformance files of tests/conformance/ (like PngSuite for PNG).

Usage::

    python tools/make_conformance.py [OUTDIR]         # default: tests/conformance
    python tools/make_conformance.py --add [OUTDIR]   # only the cases its manifest lacks

Every image comes from scikit-image's bundled samples (astronaut, chelsea,
coffee: no download) or is generated here from fixed formulas and fixed seeds;
every encoder parameter is fixed, and only imcompress's public API is used
(``imcompress.compress`` / ``decompress`` / ``inspect``). Each file's
``inspect()`` is checked against what the case claims to exercise, so a case
that silently stops exercising its branch (say, an encoder change that drops
the classified basis) fails here instead of shrinking the suite.

Writes the ``.imc`` files, ``MANIFEST.json`` (format in README.md there) and
prints a table for README.md. Invalid files are derived from valid ones by
editing bytes and, where the damage should be found past the checksum,
re-sealing the CRC-32.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

import imcompress

ROOT = Path(__file__).resolve().parents[1]


# -- source images ---------------------------------------------------------------

def _skimage(name):
    import skimage.data

    return np.ascontiguousarray(getattr(skimage.data, name)()[:, :, :3])


def _crop(name, y, x, h, w):
    return np.ascontiguousarray(_skimage(name)[y : y + h, x : x + w])


def _with_alpha(rgb, kind="soft"):
    """RGBA from RGB with a deterministic alpha: a soft disc (many levels) or
    a hard mask of three levels (0, 128, 255)."""
    h, w, _ = rgb.shape
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot((yy - h / 2) / max(h, 1), (xx - w / 2) / max(w, 1))
    if kind == "soft":
        a = np.clip(255.0 * (0.55 - r) / 0.25, 0, 255)
    else:
        a = np.where(r < 0.25, 255, np.where(r < 0.4, 128, 0))
    return np.ascontiguousarray(np.dstack([rgb, np.rint(a).astype(np.uint8)]))


def _noise(h, w, c, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def _gradient(h, w):
    """Smooth colour ramps (large DC runs, escapes of the DC magnitude code)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255.0 * xx / max(w - 1, 1)
    g = 255.0 * yy / max(h - 1, 1)
    b = 127.5 + 127.5 * np.sin(xx / 7.0 + yy / 11.0)
    return np.rint(np.dstack([r, g, b])).astype(np.uint8)


def _gratings(h, w, seed=0):
    """Four quadrants of sinusoidal gratings at different angles, light noise:
    textures where per-class bases pay for themselves."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    quadrant = (yy >= h // 2) * 2 + (xx >= w // 2)
    out = np.zeros((h, w))
    for i, t in enumerate((0.3, 1.2, 2.0, 2.7)):
        out = np.where(quadrant == i, 128 + 90 * np.sin(0.9 * (np.cos(t) * xx + np.sin(t) * yy)), out)
    out += np.random.default_rng(seed).normal(0, 4, (h, w))
    return np.clip(np.rint(np.dstack([out, 0.8 * out + 30, 255 - out])), 0, 255).astype(np.uint8)


def _few_colors(h, w):
    """Four flat colours in blocks: an exact palette (K >= 4)."""
    pal = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200], [240, 240, 240]], dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    return np.ascontiguousarray(pal[((yy // 5) + 2 * (xx // 7)) % 4])


def _icc():
    """Pillow's built-in sRGB profile, its creation date zeroed (reproducible)."""
    from PIL import ImageCms

    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    icc[24:36] = bytes(12)
    return bytes(icc)


# -- cases -------------------------------------------------------------------------
# (file stem, image thunk, method, params, what it exercises, inspect() checks)

def _cases():
    astro = lambda: _crop("astronaut", 40, 150, 96, 128)  # noqa: E731  (face and helmet)
    chelsea = lambda: _crop("chelsea", 60, 100, 64, 80)  # noqa: E731
    coffee = lambda: _crop("coffee", 100, 150, 48, 64)  # noqa: E731
    km, pr, pp = "kmeans", "pca-rows", "pca-patch"
    c = []

    def add(stem, image, method, params, what, **checks):
        if method == pp and "bitstream" not in params:  # §5 cases: pinned, the default is now 2
            params = {**params, "bitstream": 1}
        if method == pp and params.get("bitstream") == 2 and "speed" not in params:  # made at speed 5, then the default
            params = {**params, "speed": 5}
        c.append((stem, image, method, params, what, checks))

    # kmeans (method 1)
    add("km-rgb-k16", astro, km, {"n_colors": 16}, "RGB, K = 16, every flag and rank branch",
        n_colors=16)
    add("km-rgb-k256", chelsea, km, {"n_colors": 256}, "K = 256: long ranks, Exp-Golomb escapes")
    add("km-rgb-k2", coffee, km, {"n_colors": 2}, "K = 2, the smallest palette", n_colors=2)
    add("km-rgba-k32", lambda: _with_alpha(astro()), km, {"n_colors": 32},
        "RGBA palette (4-byte PLTE entries), soft alpha", channels=4)
    add("km-dither", astro, km, {"n_colors": 8, "dither": 1.0},
        "Floyd-Steinberg dithering, strength 1 (flag bit 0)", dither=1.0)
    add("km-dither-half", coffee, km, {"n_colors": 12, "dither": 0.5}, "dithering strength 0.5",
        dither=0.5)
    add("km-oklab", chelsea, km, {"n_colors": 24, "color_space": "oklab"},
        "palette clustered in Oklab (decoder sees only the palette)")
    add("km-exact", lambda: _few_colors(30, 42), km, {"n_colors": 16},
        "exact palette: 4 colours <= K (flag bit 1), K stored = 4", exact=True, n_colors=4)
    add("km-1x1", lambda: _noise(1, 1, 3, 1), km, {"n_colors": 2}, "1 x 1 pixel, K = 1")
    add("km-row", lambda: _noise(1, 40, 3, 2), km, {"n_colors": 8}, "a single row (1 x 40)")
    add("km-col", lambda: _noise(40, 1, 3, 3), km, {"n_colors": 8}, "a single column (40 x 1)")
    add("km-odd", lambda: _crop("coffee", 0, 0, 17, 31), km, {"n_colors": 20}, "odd size 17 x 31")
    add("km-icc", coffee, km, {"n_colors": 16}, "with an ICCP section (ignored by decoding)",
        icc=True)

    # pca-rows (method 2)
    add("pr-n8", astro, pr, {"n_components": 8}, "RGB, n = 8 per channel")
    add("pr-rgb-n", astro, pr, {"n_components": (3, 9, 1)}, "different n per channel (3, 9, 1)")
    add("pr-var50", chelsea, pr, {"variance": 0.5}, "n chosen by explained variance 0.5")
    add("pr-var95", chelsea, pr, {"variance": 0.95}, "explained variance 0.95 (the default)")
    add("pr-var100", coffee, pr, {"variance": 1.0}, "variance 1.0: n = min(H, W), the largest")
    add("pr-rgba", lambda: _with_alpha(coffee(), "hard"), pr, {"n_components": 6},
        "RGBA: ALPH section with 3 alpha levels", channels=4)
    add("pr-2x1", lambda: _noise(2, 1, 3, 4), pr, {"n_components": 1},
        "2 x 1, the smallest image row PCA accepts (it needs 2 rows)")
    add("pr-odd", lambda: _crop("chelsea", 0, 0, 23, 17), pr, {"n_components": 5}, "odd size 23 x 17")
    add("pr-icc", coffee, pr, {"n_components": 4}, "with an ICCP section", icc=True)

    # pca-patch (method 3)
    for p in (4, 8, 16):
        add(f"pp-dct-p{p}-420", astro, pp, {"quality": 60, "patch_size": p, "chroma": "420",
                                            "basis": "dct"},
            f"DCT basis, p = {p}, 4:2:0", patch=p, basis="dct", chroma="4:2:0")
        add(f"pp-pca-p{p}", chelsea, pp, {"quality": 60, "patch_size": p, "chroma": "444",
                                         "basis": "pca"},
            f"learned basis (mode 1) on every plane, p = {p}, 4:4:4", patch=p, basis="pca",
            chroma="4:4:4")
        # classes pay only with enough blocks: oriented gratings for p = 8, 16
        cls_img, cls_q = {4: (astro, 70), 8: (lambda: _gratings(96, 96), 50),
                          16: (lambda: _gratings(288, 288), 40)}[p]
        add(f"pp-cls-p{p}", cls_img, pp, {"quality": cls_q, "patch_size": p, "chroma": "420",
                                         "basis": "classified"},
            f"classified luma (class map, class bases), p = {p}", patch=p, basis="classified")
    add("pp-dct-p8-444", coffee, pp, {"quality": 50, "patch_size": 8, "chroma": "444",
                                      "basis": "dct"}, "DCT, 4:4:4", chroma="4:4:4")
    add("pp-q0", astro, pp, {"quality": 0, "patch_size": 8, "basis": "dct"},
        "quality 0: coarsest step, few or no AC levels")
    add("pp-q100-p16", coffee, pp, {"quality": 100, "patch_size": 16, "chroma": "444",
                                    "basis": "dct"},
        "quality 100, p = 16: large levels (unary escapes), bands >= 24")
    add("pp-dc-only", lambda: np.full((20, 28, 3), (90, 160, 40), dtype=np.uint8), pp,
        {"quality": 50, "patch_size": 8, "basis": "dct"}, "flat image: K = 0, DC levels only",
        components=0)
    add("pp-gradient", lambda: _gradient(64, 96), pp, {"quality": 95, "patch_size": 4, "basis": "dct"},
        "smooth ramps at a fine step: DC residual escapes, p = 4 deblocking")
    add("pp-noise", lambda: _noise(24, 40, 3, 5), pp, {"quality": 90, "patch_size": 8, "basis": "dct"},
        "noise: every AC position, K = p^2 - 1")
    add("pp-rgba", lambda: _with_alpha(chelsea()), pp, {"quality": 60, "patch_size": 8, "basis": "dct"},
        "RGBA: the alpha plane and its own model", channels=4)
    add("pp-rgba-pca", lambda: _with_alpha(coffee(), "hard"), pp,
        {"quality": 80, "patch_size": 4, "chroma": "420", "basis": "pca"},
        "RGBA with learned bases on all four planes", channels=4, basis="pca")
    add("pp-1x1", lambda: _noise(1, 1, 3, 6), pp, {"quality": 50, "patch_size": 8, "chroma": "420"},
        "1 x 1 pixel, 4:2:0 (1 x 1 chroma)")
    add("pp-1x1-rgba", lambda: _noise(1, 1, 4, 7), pp, {"quality": 50, "patch_size": 4}, "1 x 1 RGBA",
        channels=4)
    add("pp-row", lambda: _crop("astronaut", 200, 0, 1, 77), pp,
        {"quality": 60, "patch_size": 8, "chroma": "420"}, "a single row 1 x 77, 4:2:0")
    add("pp-col", lambda: _crop("astronaut", 0, 200, 45, 1), pp,
        {"quality": 60, "patch_size": 4, "chroma": "444"}, "a single column 45 x 1, 4:4:4")
    add("pp-odd-420", lambda: _crop("chelsea", 3, 5, 33, 47), pp,
        {"quality": 55, "patch_size": 8, "chroma": "420"}, "odd size 33 x 47, 4:2:0 (17 x 24 chroma)",
        chroma="4:2:0")
    add("pp-odd-444-p16", lambda: _crop("coffee", 7, 9, 35, 19), pp,
        {"quality": 55, "patch_size": 16, "chroma": "444"}, "odd size 35 x 19, p = 16 padding")
    add("pp-icc", coffee, pp, {"quality": 50}, "defaults (auto patch, chroma, basis) with an ICCP section",
        icc=True)

    # pca-patch bitstream 2 (§6: intra prediction, quadtree 32..4, deblocking on leaf edges)
    b2 = lambda **kw: {"bitstream": 2, **kw}  # noqa: E731
    add("b2-rgb-420", astro, pp, b2(quality=50, chroma="420"),
        "bitstream 2, RGB 4:2:0, photo crop (intra modes, quadtree, CfL candidates)", bitstream=2,
        chroma="4:2:0")
    add("b2-rgb-444", chelsea, pp, b2(quality=60, chroma="444"), "bitstream 2, 4:4:4 (full-size chroma)",
        bitstream=2, chroma="4:4:4")
    add("b2-q5", coffee, pp, b2(quality=5), "quality 5: the coarsest step tried, few nonzero levels",
        bitstream=2)
    add("b2-q98", lambda: _crop("coffee", 120, 200, 24, 32), pp, b2(quality=98, chroma="444"),
        "quality 98: fine step, large levels (GT1/GT2 and remainder codes)", bitstream=2)
    add("b2-speed0", lambda: _crop("astronaut", 60, 180, 40, 48), pp, b2(quality=60, speed=0),
        "speed 0 (slowest, most thorough encoder)", bitstream=2)
    add("b2-speed9", chelsea, pp, b2(quality=60, speed=9),
        "speed 9 (fastest encoder): smallest block 8 x 8 (log2min = 3)", bitstream=2)
    add("b2-gradient", lambda: _gradient(64, 96), pp, b2(quality=90, chroma="444"),
        "smooth ramps at a fine step (smooth prediction, deblocking of luma)", bitstream=2)
    add("b2-rgba", lambda: _with_alpha(coffee()), pp, b2(quality=60),
        "bitstream 2 RGBA: the alpha plane and its own model (kind 2)", bitstream=2, channels=4)
    add("b2-1x1", lambda: _noise(1, 1, 3, 8), pp, b2(quality=50, chroma="420"),
        "1 x 1 pixel, 4:2:0: one 64 x 64 padded root", bitstream=2)
    add("b2-1x1-rgba", lambda: _noise(1, 1, 4, 9), pp, b2(quality=50), "1 x 1 RGBA", bitstream=2,
        channels=4)
    add("b2-row", lambda: _crop("astronaut", 300, 0, 1, 77), pp, b2(quality=60, chroma="420"),
        "a single row 1 x 77, 4:2:0", bitstream=2)
    add("b2-col", lambda: _crop("astronaut", 0, 300, 45, 1), pp, b2(quality=60, chroma="444"),
        "a single column 45 x 1, 4:4:4", bitstream=2)
    add("b2-odd-420", lambda: _crop("chelsea", 3, 5, 33, 47), pp, b2(quality=55, chroma="420"),
        "odd size 33 x 47, 4:2:0 (17 x 24 chroma, padded to 64)", bitstream=2, chroma="4:2:0")
    return c


# -- invalid files -----------------------------------------------------------------

def _seal(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def _sections(data: bytes):
    """(tag, payload offset, length) of every section of a valid file."""
    pos, out = 17, []
    for _ in range(data[16]):
        tag = data[pos : pos + 4]
        (n,) = struct.unpack_from("<I", data, pos + 4)
        out.append((tag, pos + 8, n))
        pos += 8 + n
    return out


def _edit_section(data, tag, fn):
    """Replace section ``tag``'s payload by ``fn(payload)`` and re-seal."""
    body = bytearray(data[:17])
    for t, off, n in _sections(data):
        payload = data[off : off + n]
        if t == tag:
            payload = fn(bytes(payload))
        body += t + struct.pack("<I", len(payload)) + payload
    return _seal(bytes(body))


def _drop_section(data, tag):
    body = bytearray(data[:17])
    kept = 0
    for t, off, n in _sections(data):
        if t != tag:
            body += data[off - 8 : off + n]
            kept += 1
    body[16] = kept
    return _seal(bytes(body))


def _set_byte(b, i, v):
    b = bytearray(b)
    b[i] = v
    return bytes(b)


def _precision(b, plane, e):
    return _set_byte(b, 11 + 7 * plane + 2, e)


def _precision_all(b, e):
    for i in range(b[2]):
        b = _precision(b, i, e)
    return b


def _edited(valid):
    """Valid files the encoder does not write, made by editing fields whose
    effect the spec defines: (stem, source stem, edit of the file, what)."""
    return [
        ("pp-mixed-precision", "pp-pca-p8", lambda d: _edit_section(d, b"PPAR", lambda b: _precision(b, 0, 3)),
         "luma basis read at precision 2^-3, chroma at 2^-5: entries up to 32 pass because the magnitude "
         "limit is the largest 2^e + 2 over all planes (34); Gram-Schmidt renormalises"),
        ("pp-section-order", "pp-icc", _reverse_sections,
         "sections in the order ICCP, PDAT, PPAR: decoders look sections up by tag"),
        ("km-section-order", "km-icc", _reverse_sections, "sections in the order ICCP, IDXS, PLTE, KPAR"),
    ]


def _synthetic():
    """Valid bitstream-2 files the encoder never writes, whose syntax elements are drawn at random by
    tools/spec_decoder/synth.py (root blocks below 32, |CfL alpha| = 16, clipped predictions and
    residuals): (stem, bytes, what, the branches its stream takes, as synth counted them)."""
    sys.path.insert(0, str(ROOT))
    from tools.spec_decoder import synth

    return [(stem, s.data, s.what, {k: s.facts["counts"].get(k, 0) for k in keys})
            for stem, s, keys in synth.conformance_cases()]


def _reverse_sections(data):
    body = bytearray(data[:17])
    for _, off, n in reversed(_sections(data)):
        body += data[off - 8 : off + n]
    return _seal(bytes(body))


def _invalid(valid):
    """(stem, bytes, error class, message fragment, what)."""
    pp, km, pr = valid["pp-dct-p8-420"], valid["km-rgb-k16"], valid["pr-n8"]
    pca, cls, b2 = valid["pp-pca-p8"], valid["pp-cls-p8"], valid["b2-rgb-420"]
    body = pp[:-4]
    return [
        ("bad-magic", b"\x89IMX" + pp[4:], "CorruptFileError", "wrong magic", "magic is not \\x89IMC"),
        ("bad-version-2", _seal(_set_byte(body, 4, 2)), "UnsupportedVersionError", "upgrade imcompress",
         "format version 2 (newer than this decoder)"),
        ("bad-version-0", _seal(_set_byte(body, 4, 0)), "CorruptFileError", "format version 0",
         "format version 0"),
        ("bad-crc", pp[:-1] + bytes([pp[-1] ^ 0x5A]), "CorruptFileError", "checksum mismatch",
         "CRC-32 does not match"),
        ("bad-truncated", pp[: len(pp) // 2], "CorruptFileError", "checksum mismatch", "file cut in half"),
        ("bad-trailing", _seal(body + b"\0\0\0"), "CorruptFileError", "unexpected bytes after the last section",
         "bytes after the last section (CRC re-sealed)"),
        ("bad-channels", _seal(_set_byte(body, 6, 2)), "CorruptFileError", "invalid channel count",
         "header channels = 2"),
        ("bad-method", _seal(_set_byte(body, 5, 200)), "CorruptFileError", "unknown method id 200",
         "unknown method id 200"),
        ("pp-missing-pdat", _drop_section(pp, b"PDAT"), "CorruptFileError", "missing section 'PDAT'",
         "pca-patch file without PDAT"),
        ("pp-bad-mode", _edit_section(pp, b"PPAR", lambda b: _set_byte(b, 11 + 1, 0x11)),
         "CorruptFileError", "unknown pca-patch basis mode 0x11", "luma basis mode 0x11 (one class)"),
        ("pp-bad-deblock", _edit_section(pp, b"PPAR", lambda b: _set_byte(b, 11 + 6, 16)),
         "CorruptFileError", "deblocking strength 16 out of range", "deblocking strength 16"),
        ("pp-bad-ppar-len", _edit_section(pp, b"PPAR", lambda b: b + b"\0"), "CorruptFileError",
         "PPAR section has 33 bytes for 3 planes", "PPAR one byte too long"),
        ("pp-bad-step", _edit_section(pp, b"PPAR", lambda b: b[:3] + struct.pack("<f", float("nan")) + b[7:]),
         "CorruptFileError", "quantizer step nan out of range", "luma step NaN"),
        ("pp-truncated-pdat", _edit_section(pp, b"PDAT", lambda b: b[: len(b) // 3]), "CorruptFileError",
         "pca-patch coefficient stream is truncated", "PDAT cut to a third, CRC re-sealed"),
        ("pp-degenerate-basis", _edit_section(pca, b"PPAR", lambda b: _set_byte(b, 11 + 2, 10)),
         "CorruptFileError", "basis of plane 0 is degenerate",
         "learned luma basis read at precision 2^-10 instead of 2^-5: vector norms ~1/32 < 0.25"),
        ("pp-degenerate-class", _edit_section(cls, b"PPAR", lambda b: _set_byte(b, 11 + 2, 10)),
         "CorruptFileError", "class 1 basis of plane 0 is degenerate",
         "classified luma, class bases read at precision 2^-10: degenerate"),
        ("pp-basis-limit", _edit_section(pca, b"PPAR", lambda b: _precision_all(b, 3)),
         "CorruptFileError", "basis stream holds an out-of-range value",
         "every plane at precision 2^-3: stored entries exceed the limit 2^3 + 2"),
        ("km-truncated-idxs", _edit_section(km, b"IDXS", lambda b: b[: len(b) // 3]), "CorruptFileError",
         "truncated", "kmeans IDXS cut to a third, CRC re-sealed"),
        ("pr-truncated-rdat", _edit_section(pr, b"RDAT", lambda b: b[: len(b) // 3]), "CorruptFileError",
         "truncated", "pca-rows RDAT cut to a third, CRC re-sealed"),
        ("km-bad-plte", _edit_section(km, b"PLTE", lambda b: b[:-1]), "CorruptFileError", "PLTE has 47 bytes",
         "kmeans PLTE one byte short"),
        ("pr-bad-coder", _edit_section(pr, b"RPAR", lambda b: _set_byte(b, 0, 9)), "CorruptFileError",
         "unknown pca-rows coder 9", "pca-rows unknown coder 9"),
        # bitstream 2 (§6.1: PPAR head of 11 bytes, then log2max, log2min, rho, s per plane)
        ("b2-bad-block-sizes", _edit_section(b2, b"PPAR", lambda b: _set_byte(b, 11, 6)), "CorruptFileError",
         "block sizes 2**2..2**6 are not within 4..32", "bitstream 2, luma log2max = 6 (root 64)"),
        ("b2-bad-rho", _edit_section(b2, b"PPAR", lambda b: _set_byte(b, 11 + 2, 128)), "CorruptFileError",
         "reconstruction offset 128/256 out of range", "bitstream 2, luma rho = 128 > 127"),
        ("b2-truncated-pdat", _edit_section(b2, b"PDAT", lambda b: b[: len(b) // 3]), "CorruptFileError",
         "stream is truncated", "bitstream 2, PDAT cut to a third, CRC re-sealed"),
    ]


# -- main ----------------------------------------------------------------------------

def _pixels_sha256(img: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(img, dtype=np.uint8).tobytes()).hexdigest()


def _check(stem, info, checks):
    prm = info["params"]
    for key, want in checks.items():
        if key == "channels":
            got = info["channels"]
        elif key == "icc":
            got = bool(prm.get("icc_profile")) or "ICCP" in info["sections"]
        elif key == "bitstream":
            got = prm.get("bitstream", 1)
        elif key == "patch":
            got = prm["patch_sizes"][0]
        elif key == "basis":
            got = prm["basis"][0].split(" ")[0]
        elif key == "components":
            got = max(prm["components"])
        else:
            got = prm[key]
        if got != want:
            raise SystemExit(f"{stem}: expected {key} = {want!r}, the encoder gave {got!r}")


def _describe(info):
    """The decoder-relevant facts of a file, for the manifest."""
    prm = info["params"]
    keep = {k: prm[k] for k in ("chroma", "patch_sizes", "basis", "components", "deblock", "n_colors",
                                "exact", "dither", "n_components", "block_sizes") if k in prm}
    if prm.get("bitstream") == 2:
        keep["bitstream"] = 2
    return keep


def add_new(outdir: Path):
    """Write only the cases outdir's manifest does not list yet: listed files keep their bytes and
    entries (a case whose encoder choice moved on this machine, e.g. a BLAS-dependent PCA, is not
    rewritten), new entries follow in the order made."""
    import shutil
    import tempfile

    old = json.loads((outdir / "MANIFEST.json").read_text())
    listed = {e["file"] for e in old["files"]}
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp), table=False)
        made = json.loads((Path(tmp) / "MANIFEST.json").read_text())
        new = [e for e in made["files"] if e["file"] not in listed]
        for e in new:
            shutil.copyfile(Path(tmp) / e["file"], outdir / e["file"])
    old["files"] += new
    (outdir / "MANIFEST.json").write_text(json.dumps(old, indent=1) + "\n")
    _print_table(old["files"])


def build(outdir: Path, table: bool = True):
    outdir.mkdir(parents=True, exist_ok=True)
    for old in outdir.glob("*.imc"):
        old.unlink()
    icc = _icc()
    entries, valid = [], {}
    for stem, image, method, params, what, checks in _cases():
        img = image()
        data = imcompress.compress(img, method, icc_profile=icc if checks.get("icc") else None, **params)
        dec = imcompress.decompress(data)
        if dec.shape != img.shape:
            raise SystemExit(f"{stem}: decoded shape {dec.shape} != {img.shape}")
        info = imcompress.inspect(data)
        _check(stem, info, checks)
        (outdir / f"{stem}.imc").write_bytes(data)
        valid[stem] = data
        entries.append({"file": f"{stem}.imc", "expect": "pixels", "method": method,
                        "height": int(dec.shape[0]), "width": int(dec.shape[1]),
                        "channels": int(dec.shape[2]), "sha256": _pixels_sha256(dec),
                        "bytes": len(data), "encoder": {"method": method, **_json_params(params)},
                        "decoder_facts": _describe(info), "exercises": what})
    for stem, src, edit, what in _edited(valid):
        data = edit(valid[src])
        dec = imcompress.decompress(data)
        if stem.endswith("section-order"):  # the same file in another order: the same pixels
            assert np.array_equal(dec, imcompress.decompress(valid[src])), stem
        info = imcompress.inspect(data)
        (outdir / f"{stem}.imc").write_bytes(data)
        entries.append({"file": f"{stem}.imc", "expect": "pixels", "method": info["method"],
                        "height": int(dec.shape[0]), "width": int(dec.shape[1]),
                        "channels": int(dec.shape[2]), "sha256": _pixels_sha256(dec), "bytes": len(data),
                        "encoder": {"edited_from": f"{src}.imc"},
                        "decoder_facts": _describe(info), "exercises": what})
    for stem, data, what, branches in _synthetic():
        missing = [k for k, n in branches.items() if n == 0]
        if missing:
            raise SystemExit(f"{stem}: its stream no longer takes {missing}")
        dec = imcompress.decompress(data)
        info = imcompress.inspect(data)
        (outdir / f"{stem}.imc").write_bytes(data)
        entries.append({"file": f"{stem}.imc", "expect": "pixels", "method": info["method"],
                        "height": int(dec.shape[0]), "width": int(dec.shape[1]),
                        "channels": int(dec.shape[2]), "sha256": _pixels_sha256(dec), "bytes": len(data),
                        "encoder": {"synthetic": "tools/spec_decoder/synth.py conformance_cases()"},
                        "decoder_facts": {**_describe(info), "branches": branches}, "exercises": what})
    # the deblocking strengths the suite covers, by class (0, 1..7, 8..15)
    strengths = sorted({s for e in entries for s in e["decoder_facts"].get("deblock", [])})
    for stem, data, err, msg, what in _invalid(valid):
        try:
            imcompress.decompress(data)
        except imcompress.ImcompressError as exc:
            if type(exc).__name__ != err or msg not in str(exc):
                raise SystemExit(f"{stem}: expected {err} with {msg!r}, got {type(exc).__name__}: {exc}")
        else:
            raise SystemExit(f"{stem}: decoded without error")
        (outdir / f"{stem}.imc").write_bytes(data)
        entries.append({"file": f"{stem}.imc", "expect": err, "message": msg, "bytes": len(data),
                        "exercises": what})
    manifest = {"format": "imcompress conformance manifest 1",
                "pixels_sha256": "SHA-256 of the decoded uint8 array, rows top to bottom, pixels left to "
                                 "right, channels interleaved (RGB or RGBA), no header",
                "files": entries}
    (outdir / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"pca-patch deblocking strengths covered: {strengths}")
    if table:
        _print_table(entries)


def _print_table(entries):
    print(f"{len(entries)} files, {sum(e['bytes'] for e in entries)} bytes")
    for e in entries:
        expect = "pixels" if e["expect"] == "pixels" else f"{e['expect']}: {e['message'] or '(any)'}"
        size = f"{e['height']}×{e['width']}×{e['channels']}" if e["expect"] == "pixels" else ""
        print(f"| `{e['file']}` | {size} | {expect} | {e['exercises']} |")


def _json_params(params):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--add"]
    target = Path(args[0]) if args else ROOT / "tests" / "conformance"
    (add_new if "--add" in sys.argv[1:] else build)(target)
