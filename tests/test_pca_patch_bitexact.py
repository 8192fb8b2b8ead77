"""The pca-patch version-1 bitstream stays byte-for-byte what it was.

The SHA-256 values were computed with the encoder as it stood before it was
split into modules (main at e3c8fb7, when bitstream 1 was the only one);
refactoring must not change one byte.
The encoder is deterministic on one machine (docs/pca-patch.md); these files
are also decoded and checked against their sources, so a failure says which
of "bytes changed" or "decoder broke" happened.
"""

import hashlib

import numpy as np
import pytest

import imcompress
from imcompress.metrics import psnr


def _crop(sample):
    return np.ascontiguousarray(sample[100:260, 60:250])


def _rgba(sample):
    crop = _crop(sample)[:96, :120]
    alpha = (np.arange(96 * 120).reshape(96, 120, 1) % 251).astype(np.uint8)
    return np.concatenate([crop, alpha], axis=2)


CASES = [
    ("q50", _crop, {"quality": 50}, "4f907b6ada0d1ca6d4ae034d630bcd66e644f78132ba0f80ee0093640d6ee22d", 5119),
    ("q15_444", _crop, {"quality": 15, "chroma": "444"},
     "f52d0e33ff5d63547c7913dad1ac82b988be5cd913be78a696f759e7f57008f0", 764),
    ("q85_pca", _crop, {"quality": 85, "basis": "pca"},
     "e5695388445a4c6a8da4227cd252fd55fa62834c0ba005b8f3edfe95dd393f65", 44754),
    ("q40_p4", _crop, {"quality": 40, "patch_size": 4},
     "3bb2f3eec03554c2bc8b6c758fb122c491fda01cc7acfb2c3f52a7ab17b65535", 3117),
    ("q60_p16_dct", _crop, {"quality": 60, "patch_size": 16, "basis": "dct"},
     "90999d4f6718523722998c7c61aebbbbebba371d2ebe85d62e053e7a0202e5b5", 8387),
    ("q50_classified", lambda s: np.ascontiguousarray(s[:256, :256]), {"quality": 50, "basis": "classified"},
     "6af1af051f88567e29ce15e44f2950017be94612747a009204c376aa2ff67304", 8975),
    ("bpp1", _crop, {"bpp": 1.0}, "cf608ce107022642ae1101b307d7ab486d4031dd85f6b80fbba2a9f6570c967c", 3797),
    ("rgba_q70", _rgba, {"quality": 70}, "cafc74051ea52d4e45dec9fc4dada05c2046f838ade3e360f9e09bb373aca069", 6388),
]


@pytest.mark.parametrize("name, make, options, digest, size", CASES, ids=[c[0] for c in CASES])
def test_version1_bytes_unchanged(sample, name, make, options, digest, size):
    img = make(sample)
    data = imcompress.compress(img, "pca-patch", bitstream=1, **options)
    out = imcompress.decompress(data)
    assert out.shape == img.shape
    assert psnr(img[..., :3], out[..., :3]) > 24.0
    assert len(data) == size
    assert hashlib.sha256(data).hexdigest() == digest
