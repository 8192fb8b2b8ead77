"""The palette-index coder lives in entropy/ and is shared by two codecs; one decoder bound."""

import math

import numpy as np
import pytest

import imcompress
from imcompress import CorruptFileError, UsageError
from imcompress.entropy import MAX_DECISIONS_PER_BYTE, decode_indices, encode_indices, max_decisions
from imcompress.entropy._rangecoder import _PROB_MAX, _PROB_ONE


def test_the_bound_follows_from_the_coder():
    # the cheapest decision costs -log2(p_max) bits; the constant must not be below the truth
    cheapest_bits = -math.log2(_PROB_MAX / _PROB_ONE)
    assert 8 / cheapest_bits <= MAX_DECISIONS_PER_BYTE <= 1.05 * 8 / cheapest_bits
    assert max_decisions(10) == MAX_DECISIONS_PER_BYTE * 18


def test_a_constant_plane_stays_within_the_bound():
    # the most compressible plane there is: every decision at the cheapest probability
    idx = np.zeros((512, 1024), np.uint8)
    pal = np.array([[0], [255]], np.uint8)
    data = encode_indices(idx, pal)
    assert idx.size <= max_decisions(len(data))
    np.testing.assert_array_equal(decode_indices(data, pal, 512, 1024), idx)


@pytest.mark.parametrize("k, channels", [(2, 1), (17, 3), (256, 4)])
def test_roundtrip(rng, k, channels):
    pal = rng.integers(0, 256, (k, channels), dtype=np.uint8)
    idx = rng.integers(0, k, (23, 31)).astype(np.uint8)
    idx[5:15, 5:20] = idx[5, 5]
    np.testing.assert_array_equal(decode_indices(encode_indices(idx, pal), pal, 23, 31), idx)


def test_errors():
    pal = np.zeros((3, 3), np.uint8)
    with pytest.raises(UsageError, match=r"index 3 is outside the palette of 3 colours"):
        encode_indices(np.full((2, 2), 3, np.uint8), pal)
    with pytest.raises(UsageError, match="non-empty"):
        encode_indices(np.zeros((0, 2), np.uint8), pal)
    with pytest.raises(CorruptFileError, match="too short for 10000x10000 pixels"):
        decode_indices(b"\x00" * 4, pal, 10_000, 10_000)


def test_both_codecs_use_the_shared_coder(rng):
    # the kmeans IDXS section and the pca-rows ALPH section are the same coder's streams
    from imcompress.format import unpack_container

    img = rng.integers(0, 256, (16, 12, 4), dtype=np.uint8)
    img[..., 3] = np.where(np.arange(12) < 6, 0, 255)[None, :]
    alph = dict(unpack_container(imcompress.compress(img, "pca-rows", n_components=2)).sections)[b"ALPH"]
    values, inverse = np.unique(img[..., 3], return_inverse=True)
    expected = encode_indices(inverse.reshape(16, 12).astype(np.uint8), values.reshape(-1, 1))
    assert alph == bytes([len(values) - 1]) + values.tobytes() + expected
    codec = imcompress.get_codec("kmeans")(n_colors=4)
    palette, indices, _ = codec.quantize(img)
    idxs = dict(unpack_container(codec.encode(img)).sections)[b"IDXS"]
    assert idxs == encode_indices(indices, palette)


@pytest.mark.parametrize("seed", range(6))
def test_ties_and_repeated_entries_follow_the_spec(seed):
    """Palettes with repeated entries and equal distances (the rank's tie rule: lower
    index first), coded by the library, decoded by the spec decoder written from
    docs/FORMAT.md alone (tools/spec_decoder)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tools.spec_decoder import decode

    from imcompress.format import pack_container
    from imcompress.kmeans._codec import KMeansCodec

    rng = np.random.default_rng(seed)
    k, c = int(rng.integers(3, 257)), int(rng.choice([3, 4]))
    pal = rng.integers(0, 4, (k, c), dtype=np.uint8) * 85  # few levels: many equal distances
    pal[: k // 3] = pal[k // 3]  # repeated entries
    idx = rng.integers(0, k, (23, 31)).astype(np.uint8)
    idx[:, 10:20] = idx[:, 9:10]  # runs, so the flags and the ranks both occur
    image = pal[idx]
    sections = KMeansCodec(k)._sections(image, pal, idx, {}, None)
    data = pack_container(KMeansCodec.method_id, 23, 31, c, sections)
    assert np.array_equal(decode(data), image)
    assert np.array_equal(decode_indices(encode_indices(idx, pal), pal, 23, 31), idx)
