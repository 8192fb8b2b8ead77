"""PNG's row filter compiled ahead of time: the JIT's filtered bytes, bit for bit, and only on its declared types
(a build from edited sources is refused: tests/test_aot.py)."""

import inspect

import numpy as np
import pytest

from imcompress import _aot
from imcompress.io import _filter_spec, _filtering, _png, png_bytes
from test_io_png import _reference_filter, decoded


@pytest.fixture(scope="module")
def builds():
    """(aot, jit) filter_rows; skips when the ahead-of-time module is not there."""
    module = _filtering._BUILDS.aot.load()
    if module is None:
        pytest.skip(f"no ahead-of-time row filter: {_filtering._BUILDS.aot.reason}")
    return module.filter_rows, _filtering._BUILDS.jit().filter_rows


@pytest.fixture
def on_the_build(builds, monkeypatch):
    """The writer runs on the compiled build, and fails the test if a call is sent to the JIT."""

    def refuse(name, args):
        raise AssertionError(f"the ahead-of-time {name} was called with other types than its signature")

    monkeypatch.setattr(_filtering._BUILDS, "to_jit", refuse)
    monkeypatch.setattr(_filtering._BUILDS, "numba_imported", lambda: False)
    assert _filtering.filters_aot()


def _rows(rng, kind, h, n):
    if kind == "noise":
        return rng.integers(0, 256, (h, n), dtype=np.uint8)
    if kind == "smooth":  # gradients: many filters close, all of Paeth's branches
        y, x = np.mgrid[:h, :n]
        return ((3 * y + 5 * x + rng.integers(0, 3, (h, n))) % 256).astype(np.uint8)
    if kind == "flat":  # ties between every filter but none
        return np.full((h, n), 200, dtype=np.uint8)
    return np.where(rng.random((h, n)) < 0.5, 0, 255).astype(np.uint8)  # wrap-around differences


def test_the_export_is_the_kernel_with_its_signature():
    from imcompress.io import _filters

    for name, (_, args) in _filter_spec.EXPORTS.items():
        assert len(inspect.signature(getattr(_filters, name).py_func).parameters) == len(args), name


@pytest.mark.parametrize("bpp", [1, 2, 3, 4])
@pytest.mark.parametrize("kind", ["noise", "smooth", "flat", "steps"])
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (70, 41)])
def test_both_builds_filter_the_same_bytes(builds, rng, bpp, kind, shape):
    h, w = shape
    rows = _rows(rng, kind, h, w * bpp)
    expected = _reference_filter(rows, bpp)
    for band in (h, 7, 1):  # the whole image, and bands as the writer's threads filter them
        outs = []
        for kernel in builds:
            out = np.full_like(expected, 77)
            for y0 in range(0, h, band):
                kernel(rows, bpp, y0, min(h, y0 + band), out)
            outs.append(out)
        np.testing.assert_array_equal(outs[0], expected)
        np.testing.assert_array_equal(outs[1], expected)
    # a band writes its rows only
    if h > 4:
        out = np.full_like(expected, 77)
        builds[0](rows, bpp, 2, 4, out)
        np.testing.assert_array_equal(out[2:4], expected[2:4])
        assert (out[:2] == 77).all() and (out[4:] == 77).all()


@pytest.mark.parametrize("threads", [1, 2])
def test_png_bytes_on_the_compiled_build_are_the_jits(on_the_build, rng, sample, monkeypatch, threads):
    images = [(sample[:90, :77], None), (rng.integers(0, 256, (33, 21, 4), dtype=np.uint8), None)]
    for k in (2, 3, 16):  # 1, 2 and 4 bits per pixel: packed rows, filtered
        pal = rng.integers(0, 256, (k, 3), dtype=np.uint8)
        images.append((rng.integers(0, k, (45, 37), dtype=np.uint8), pal))
    monkeypatch.setattr(_png, "PIECE", 256)  # many pieces: many bands filtered in threads
    for pixels, pal in images:
        aot = png_bytes(pixels, palette=pal, threads=threads)
        with monkeypatch.context() as m:
            m.setattr(_filtering._BUILDS, "numba_imported", lambda: True)
            assert not _filtering.filters_aot()
            jit = png_bytes(pixels, palette=pal, threads=threads)
        assert aot == jit
        np.testing.assert_array_equal(decoded(aot), pixels if pal is None else pal[pixels])


def test_declared_types_only_reach_the_compiled_code(builds, rng, monkeypatch):
    # a compiled function trusts its arguments: strided, Fortran-ordered or other-dtype
    # arrays, and arrays for the integers, go to the JIT instead
    sent = []
    real = _filtering._BUILDS.to_jit

    def spy(name, args):
        sent.append(name)
        return real(name, args) if len(sent) <= 3 else None  # the JIT takes the layouts, not the types

    monkeypatch.setattr(_filtering._BUILDS, "to_jit", spy)
    monkeypatch.setattr(_filtering._BUILDS, "numba_imported", lambda: False)
    rows = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    expected = _reference_filter(rows, 3)
    wide = np.zeros((20, 40), dtype=np.uint8)
    cases = [(np.asfortranarray(rows), np.zeros_like(expected)),
             (np.repeat(rows, 2, axis=0)[::2], np.zeros_like(expected)),
             (rows, wide[:, :31])]  # the filtered rows a strided view
    for src, out in cases:
        _filtering.filter_rows(src, 3, 0, 20, out)
        np.testing.assert_array_equal(out, expected)
    _filtering.filter_rows(rows.astype(np.uint16), 3, 0, 20, np.zeros_like(expected))
    _filtering.filter_rows(rows, np.array([3]), 0, 20, np.zeros_like(expected))
    assert sent == ["filter_rows"] * 5
    out = np.zeros_like(expected)
    _filtering.filter_rows(rows, np.int64(3), 0, 20, out)  # numpy integers convert: compiled
    assert len(sent) == 5
    np.testing.assert_array_equal(out, expected)


def test_the_choice_of_build(monkeypatch, sample):
    missing = _aot.AotModule("imcompress.io._no_such_aot", _filter_spec.SOURCES)
    monkeypatch.setattr(_filtering._BUILDS, "aot", missing)
    monkeypatch.setattr(_filtering._BUILDS, "numba_imported", lambda: False)
    assert not _filtering.filters_aot() and "is not built" in missing.reason
    assert _filtering._BUILDS.current() is _filtering._BUILDS.jit()  # without the build: the JIT
    np.testing.assert_array_equal(decoded(png_bytes(sample[:20, :30])), sample[:20, :30])
    monkeypatch.undo()
    if _filtering._BUILDS.aot.load() is not None:
        monkeypatch.setattr(_filtering._BUILDS, "numba_imported", lambda: False)
        assert _filtering.filters_aot() and _filtering._BUILDS.current() is not _filtering._BUILDS.jit()
    monkeypatch.setattr(_filtering._BUILDS, "numba_imported", lambda: True)
    assert not _filtering.filters_aot() and _filtering._BUILDS.current() is _filtering._BUILDS.jit()  # numba is there
