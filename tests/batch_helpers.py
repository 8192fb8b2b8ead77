"""A source tree for the batch tests, and checks of a DST against it."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

import imcompress

#: kmeans options of every batch test (small K: fast).
K = "8"


def _smooth(h, w, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 3 + 20 * seed, y * 4, (x + y) * 2], axis=-1).astype(np.float64)
    return np.clip(np.rint(base + rng.normal(0, 6, base.shape)), 0, 255).astype(np.uint8)


def growing_image():
    """An image PNG stores in ~1 kB (a repeated tile) but kmeans in ~6 kB: its result grows."""
    rng = np.random.default_rng(1)
    palette = rng.integers(0, 256, (8, 3), dtype=np.uint8)
    return np.tile(palette[rng.integers(0, 8, (16, 16))], (8, 8, 1))


def make_tree(root: Path, n_extra: int = 0) -> dict:
    """SRC with nested folders, real and generated images, a corrupt one, a non-image,
    one that grows and a symlink pointing outside SRC. Returns the expected statuses."""
    src = root / "src"
    (src / "sub" / "deeper").mkdir(parents=True)
    outside = root / "outside"
    outside.mkdir()
    photo = imcompress.sample_image()
    Image.fromarray(_smooth(40, 48, 0)).save(src / "top.png")
    Image.fromarray(photo[100:148, 200:260]).save(src / "sub" / "photo.jpg", quality=90)
    Image.fromarray(_smooth(36, 30, 1)).save(src / "sub" / "deeper" / "gen.png")
    # a PNG named .dat is an image (content, not extension)
    Image.fromarray(photo[300:340, 100:150]).save(src / "sub" / "noext.dat", format="PNG")
    for i in range(n_extra):
        Image.fromarray(photo[(i * 37) % 400:(i * 37) % 400 + 48, (i * 53) % 400:(i * 53) % 400 + 56]).save(
            src / "sub" / f"extra{i:02d}.png")
    buf = io.BytesIO()
    Image.fromarray(_smooth(40, 40, 2)).save(buf, "PNG")
    (src / "sub" / "corrupt.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (src / "notes.txt").write_text("not an image\n")
    Image.fromarray(growing_image()).save(src / "grows.png", optimize=True)
    Image.fromarray(_smooth(20, 20, 3)).save(outside / "secret.png")
    os.symlink(outside / "secret.png", src / "link.png")
    expected = {
        "top.png": ("ok", "top.kmeans.imc"),
        "sub/photo.jpg": ("ok", "sub/photo.kmeans.imc"),
        "sub/deeper/gen.png": ("ok", "sub/deeper/gen.kmeans.imc"),
        "sub/noext.dat": ("ok", "sub/noext.kmeans.imc"),
        "sub/corrupt.png": ("failed", None),
        "notes.txt": ("skipped", None),
        "grows.png": ("copied", "grows.png"),
        "link.png": ("skipped", None),
    }
    for i in range(n_extra):
        expected[f"sub/extra{i:02d}.png"] = ("ok", f"sub/extra{i:02d}.kmeans.imc")
    return {str(src / rel): v for rel, v in expected.items()}


def manifest(dst: Path) -> list:
    return [json.loads(line) for line in (dst / "manifest.jsonl").read_text().splitlines()]


def latest(records) -> dict:
    out = {}
    for r in records:
        out[r["input"]] = r
    return out


def check_dst(dst: Path, expected: dict) -> None:
    """Every manifest claim checked against the files, with independent references."""
    records = manifest(dst)
    last = latest(records)
    assert set(last) == set(expected)
    for src, (status, out) in expected.items():
        r = last[src]
        assert r["status"] == status, (src, r)
        assert r["output"] == out, (src, r)
        if status in ("ok", "copied"):
            data = (dst / out).read_bytes()
            assert r["bytes_out"] == len(data)
            assert r["output_sha256"] == hashlib.sha256(data).hexdigest()
            assert r["input_sha256"] == hashlib.sha256(Path(src).read_bytes()).hexdigest()
            assert r["bytes_in"] == Path(src).stat().st_size
        if status == "ok":
            original = imcompress.read_image(src, alpha="keep").pixels
            decoded = imcompress.decompress(data)
            assert decoded.shape == original.shape
            ref = peak_signal_noise_ratio(original, decoded, data_range=255)
            assert abs(r["psnr"] - ref) < 1e-9
            assert abs(r["bpp"] - 8 * len(data) / (original.shape[0] * original.shape[1])) < 1e-12
        if status == "copied":
            assert data == Path(src).read_bytes()
        if status == "failed":
            assert r["error"] and src in r["error"]
    # nothing else in DST: no temporary files, no journal left behind
    files = {p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file()}
    assert files == {"manifest.jsonl"} | {out for _, out in expected.values() if out}


def ok_counts(dst: Path) -> Counter:
    return Counter(r["input"] for r in manifest(dst) if r["status"] in ("ok", "copied"))
