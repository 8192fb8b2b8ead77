"""The ahead-of-time build of the K-means kernels: bit for bit the JIT's, never stale, optional."""

import inspect
import shutil

import numpy as np
import pytest

from imcompress import KMeansQuantizer, _aot
from imcompress.io import _filter_spec, _filtering
from imcompress.kmeans import _dispatch, _kernel_spec, _lloyd
from imcompress.kmeans._quantizer import prepare_colors


@pytest.fixture(scope="module")
def builds():
    """(aot, jit) Kernels; skips when the ahead-of-time module is not there."""
    aot = _dispatch._aot()
    if aot is None:
        pytest.skip(f"no ahead-of-time kernels: {_dispatch.aot_reason()}")
    return aot, _dispatch._jit()


@pytest.fixture
def no_fallback(monkeypatch):
    """Fails the test if an ahead-of-time call is sent to the JIT (arguments not as declared)."""

    def refuse(name, args):
        raise AssertionError(f"the ahead-of-time {name} was called with other types than its signature")

    monkeypatch.setattr(_dispatch._BUILDS, "to_jit", refuse)


def _same_bits(a, b):
    """Equal values, dtypes and shapes, down to the sign of zeros and NaN payloads."""
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            _same_bits(x, y)
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def _both(builds, name, *args):
    """Run kernel ``name`` of both builds on copies of ``args`` (some kernels write into them)."""
    outs = []
    for k in builds:
        copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        outs.append((getattr(k, name)(*copies), copies))
    (ra, ca), (rj, cj) = outs
    _same_bits(ra, rj)
    for x, y in zip(ca, cj):  # and what they wrote
        if isinstance(x, np.ndarray):
            _same_bits(x, y)
    return ra


def _points(rng, n, *, ties):
    """Float points, or integer points with repeats (equal distances everywhere)."""
    if ties:
        X = rng.integers(0, 8, size=(n, 3)).astype(np.float64)
        X[: n // 4] = X[n // 4 : 2 * (n // 4)]
        return X
    return rng.normal(size=(n, 3)) * [30.0, 10.0, 10.0]


def test_every_export_is_a_kernel_with_a_signature():
    from imcompress.kmeans import _kernels

    for name, (_, args) in _kernel_spec.EXPORTS.items():
        func = getattr(_kernels, name).py_func  # an @njit dispatcher
        assert len(inspect.signature(func).parameters) == len(args), name


@pytest.mark.parametrize("ties", [False, True])
def test_search_kernels_match(builds, rng, ties, no_fallback):
    X = _points(rng, 3000, ties=ties)
    C = np.ascontiguousarray(X[rng.choice(3000, 40, replace=False)])
    C[1] = C[0]  # two equal centres: the lowest index wins everywhere
    _both(builds, "center_distances", C)
    _both(builds, "half_gaps", C)
    cc, order, _ = builds[1].neighbour_geometry(C)
    _both(builds, "half_gaps_near", np.ascontiguousarray(C + 0.1), cc, order, 0.4)
    labels = _both(builds, "nearest_brute", X, C)
    guess = rng.integers(0, 40, size=3000)
    aot, jit = builds
    _same_bits(aot.nearest(X, C, guess), jit.nearest(X, C, guess))
    upper, lower = rng.random(3000) * 20, rng.random(3000) * 30
    moved = rng.random(40)
    _same_bits(aot.nearest_bounded(X, C, guess, upper, lower, moved), jit.nearest_bounded(X, C, guess, upper, lower, moved))
    _same_bits(aot.neighbour_geometry(C), jit.neighbour_geometry(C))
    w = rng.integers(1, 30, size=3000).astype(np.float64)
    _both(builds, "weighted_inertia", X, w, C, labels)
    _both(builds, "weighted_means", X, w, labels, 40)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("k,m", [(12, 0), (100, 0), (64, 3)])
def test_kmeanspp_matches(builds, rng, ties, k, m, no_fallback):
    X = _points(rng, 4000, ties=ties)
    w = rng.integers(1, 50, size=4000).astype(np.float64)
    init = np.ascontiguousarray(X[:m] + 0.25) if m else np.zeros((0, 3))
    rand = rng.random((k, 2 + int(np.log(k))))
    _both(builds, "kmeanspp", X, w, k, init, rand)


@pytest.mark.parametrize("relax", [1.0, 1.8])
def test_lloyd_steps_match(builds, elephant, relax, no_fallback):
    problem = prepare_colors(elephant).problem
    X, w = problem.X, problem.w
    aot, jit = builds
    C0 = np.ascontiguousarray(X[np.random.default_rng(1).choice(X.shape[0], 64, replace=False)])
    guess = jit.nearest_brute(X, C0)
    runs = [_lloyd.lloyd(X, w, C0, guess, 2, 40, 0.0, 5.0, 8.0, relax=relax, n_threads=t, kernels=k)
            for k in builds for t in (1, 2)]  # the compiled kernels release the GIL too: two threads
    for other in runs[1:]:
        _same_bits(tuple(runs[0]), tuple(other))
    assert runs[0][3] > 5  # several iterations, incremental sums and re-sorts exercised


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_colour_tables_match(builds, rng, channels, no_fallback):
    flat = rng.integers(0, 6, size=(5000, channels)).astype(np.uint8)  # few colours, many repeats
    _both(builds, "packed_table", flat)
    if channels == 3:
        _both(builds, "rgb_table", flat)


@pytest.mark.parametrize("k,options", [(2, {}), (16, {}), (16, {"speed": 1}), (64, {"color_space": "oklab"}),
                                       (256, {}), (256, {"speed": 10}), (32, {"fixed_colors": [[0, 0, 0]]})])
def test_fit_predict_matches_on_the_study_photo(builds, elephant, k, options, no_fallback):
    results = {}
    for name in ("aot", "jit"):
        with _dispatch.forced(name):
            q = KMeansQuantizer(k, **options)
            idx = q.fit_predict(elephant)
            assert prepare_colors(elephant).problem.kernels.name == name
        results[name] = (q.palette_, idx, q.cluster_centers_, q.inertia_, q.mse_, q.n_iter_)
    _same_bits(results["aot"], results["jit"])


def test_rgba_fit_matches(builds, sample, no_fallback):
    image = np.concatenate([sample, np.full(sample.shape[:2] + (1,), 255, np.uint8)], axis=2)
    image[:64, :64, 3] = 0
    image[64:128, :64, 3] = 128
    out = []
    for name in ("aot", "jit"):
        with _dispatch.forced(name):
            q = KMeansQuantizer(24)
            out.append((q.fit_predict(image), q.palette_))
    _same_bits(out[0], out[1])


def test_declared_types_only_reach_the_compiled_code(builds, rng):
    # a compiled function trusts its arguments: float32, Fortran-ordered or strided
    # arrays go to the JIT instead, with the JIT's result
    aot, jit = builds
    X = rng.random((200, 3))
    C = np.ascontiguousarray(X[:5])
    expect = jit.nearest_brute(X, C)
    for bad in (X.astype(np.float32), np.asfortranarray(X), np.repeat(X, 2, axis=0)[::2]):
        np.testing.assert_array_equal(aot.nearest_brute(bad, C), expect)
    np.testing.assert_array_equal(aot.weighted_means(X, np.ones(200), expect.astype(np.int32), 5)[0],
                                  jit.weighted_means(X, np.ones(200), expect, 5)[0])


@pytest.mark.parametrize("aot, sources, edit", [
    (_dispatch._BUILDS.aot, _kernel_spec.SOURCES, ("s += t * t", "s += t * t + 0.0")),
    (_filtering._BUILDS.aot, _filter_spec.SOURCES, ("best = 4", "best = 4 + 0")),  # PNG's row filter
], ids=["kmeans", "png-filter"])
def test_a_build_from_other_sources_is_not_used(aot, sources, edit, tmp_path, monkeypatch):
    if aot.load() is None:
        pytest.skip(f"no ahead-of-time build: {aot.reason}")
    pkg = aot.package_dir
    copies = []
    for name in sources:
        shutil.copy(pkg / name, tmp_path / name)
        copies.append(tmp_path / name)
    fresh = _aot.AotModule(aot.name, sources)
    monkeypatch.setattr(fresh, "source_paths", lambda: copies)
    assert fresh.load() is not None and fresh.reason is None  # the same bytes: used
    # a kernel edited after the build: the build is refused, with the reason
    text = copies[0].read_text().replace(*edit, 1)
    assert text != copies[0].read_text()
    copies[0].write_text(text)
    stale = _aot.AotModule(aot.name, sources)
    monkeypatch.setattr(stale, "source_paths", lambda: copies)
    assert stale.load() is None
    assert "edited since the install" in stale.reason and sources[0] in stale.reason


def test_without_the_build_the_jit_runs(monkeypatch, sample):
    missing = _aot.AotModule("imcompress.kmeans._no_such_aot", _kernel_spec.SOURCES)
    assert missing.load() is None and "is not built" in missing.reason
    monkeypatch.setattr(_dispatch._BUILDS, "aot", missing)
    monkeypatch.setattr(_dispatch._BUILDS, "numba_imported", lambda: False)
    assert not _dispatch.uses_aot()
    assert _dispatch.kernels().name == "jit"
    with pytest.raises(RuntimeError, match="not available: imcompress.kmeans._no_such_aot is not built"):
        with _dispatch.forced("aot"):
            pass
    q = KMeansQuantizer(8).fit(sample)
    assert q.palette_.shape == (8, 3)


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv(_aot.ENV_SWITCH, "0")
    off = _aot.AotModule(_dispatch._BUILDS.aot.name, _kernel_spec.SOURCES)
    assert off.load() is None and "switched off" in off.reason


def test_the_choice_of_build(builds, monkeypatch):
    monkeypatch.setattr(_dispatch._BUILDS, "numba_imported", lambda: False)
    assert _dispatch.uses_aot() and _dispatch.kernels().name == "aot"
    monkeypatch.setattr(_dispatch._BUILDS, "numba_imported", lambda: True)
    assert not _dispatch.uses_aot()  # numba is there already: its dispatchers
    assert _dispatch.kernels().name == "jit"
    with _dispatch.forced("aot"):
        assert _dispatch.kernels().name == "aot"
