"""The palette-index coder compiled ahead of time: the JIT's streams and planes, bit for bit."""

import numpy as np
import pytest

from imcompress import KMeansQuantizer
from imcompress.entropy import _index_spec, _indices
from imcompress.entropy._bounds import run_encoder


@pytest.fixture(scope="module")
def builds():
    module = _indices._BUILDS.aot.load()
    if module is None:
        pytest.skip(f"no ahead-of-time index coder: {_indices._BUILDS.aot.reason}")
    return module, _indices._BUILDS.jit()


def _planes(rng, sample):
    pal16 = rng.integers(0, 256, size=(16, 3)).astype(np.uint8)
    yield pal16, rng.integers(0, 16, size=(40, 57)).astype(np.uint8)  # noise: ranks everywhere
    yield pal16[:2], np.zeros((9, 13), dtype=np.uint8)  # one colour: flags only
    grey = np.repeat(np.arange(0, 256, 8, dtype=np.uint8)[:, None], 1, axis=1)  # 1 channel, equal distances
    yield grey, (np.arange(30 * 31).reshape(30, 31) % 32).astype(np.uint8)
    rgba = rng.integers(0, 256, size=(200, 4)).astype(np.uint8)
    yield rgba, rng.integers(0, 200, size=(33, 21)).astype(np.uint8)
    for k in (8, 256):  # a photo's indices
        q = KMeansQuantizer(k)
        yield q.fit(sample).palette_, q.predict(sample)


def test_encoder_and_decoder_match(builds, rng, sample):
    aot, jit = builds
    for pal, idx in _planes(rng, sample):
        rows = _indices._channel_rows(pal)
        streams = [run_encoder(b._encode_kernel, idx, rows, capacity=64) for b in builds]  # regrows too
        assert streams[0] == streams[1]
        data = np.frombuffer(streams[0], dtype=np.uint8)
        h, w = idx.shape
        for b in builds:
            out, status = b._decode_kernel(data, rows, h, w)
            assert status == 0
            np.testing.assert_array_equal(out, idx)
        # damaged streams: the same plane and status from both
        for cut in (len(data) // 2, 3):
            got = [b._decode_kernel(data[:cut].copy(), rows, h, w) for b in builds]
            assert got[0][1] == got[1][1]
            np.testing.assert_array_equal(got[0][0], got[1][0])
        flipped = data.copy()
        flipped[len(flipped) // 3] ^= 0x5A
        got = [b._decode_kernel(flipped, rows, h, w) for b in builds]
        assert got[0][1] == got[1][1]
        np.testing.assert_array_equal(got[0][0], got[1][0])


def test_the_public_coder_uses_the_compiled_build_without_numba(builds, monkeypatch, sample):
    def refuse(name, args):
        raise AssertionError(f"the ahead-of-time {name} was called with other types than its signature")

    monkeypatch.setattr(_indices._BUILDS, "to_jit", refuse)
    monkeypatch.setattr(_indices._BUILDS, "numba_imported", lambda: False)
    assert _indices.indices_aot() and _indices._BUILDS.current() is not builds[1]
    q = KMeansQuantizer(32)
    idx = q.fit_predict(sample)
    data = _indices.encode_indices(idx, q.palette_)
    np.testing.assert_array_equal(_indices.decode_indices(data, q.palette_, *idx.shape), idx)
    monkeypatch.setattr(_indices._BUILDS, "numba_imported", lambda: True)
    assert _indices._BUILDS.current() is builds[1]
    assert _indices.encode_indices(idx, q.palette_) == data


def test_the_build_covers_the_primitives_it_compiles_in():
    # the kernels are compiled together with the range coder and the decision queue:
    # an edit to any of them makes the build stale
    assert {"_index_kernels.py", "_rangecoder.py", "_queued.py"} <= set(_index_spec.SOURCES)
    for name in _index_spec.SOURCES:
        assert (_indices._BUILDS.aot.package_dir / name).is_file()
