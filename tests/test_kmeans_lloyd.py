"""Lloyd on several threads: the same centres, labels and inertia, bit for bit, as on one."""

import numpy as np
import pytest

from imcompress import KMeansQuantizer
from imcompress.kmeans import _lloyd
from imcompress.kmeans._kernels import nearest_brute
from imcompress.kmeans._quantizer import prepare_colors


def _start(X, k, seed=0):
    C0 = X[np.random.default_rng(seed).choice(X.shape[0], k, replace=False)].copy()
    return C0, nearest_brute(X, C0)


@pytest.mark.parametrize("k", [16, 256])
def test_threads_give_the_single_thread_result(elephant, k):
    problem = prepare_colors(elephant).problem  # 86,468 distinct colours: integer points, integer weights
    assert problem.n >= _lloyd.THREAD_MIN_POINTS and _lloyd._exact_sums(problem.X, problem.w)
    C0, guess = _start(problem.X, k)
    runs = {t: _lloyd.lloyd(problem.X, problem.w, C0, guess, 2, 300, 0.0, 5.0, 8.0, n_threads=t) for t in (1, 2, 3)}
    for t in (2, 3):
        for a, b in zip(runs[1], runs[t]):
            np.testing.assert_array_equal(a, b)
    C, labels, inertia, n_iter = runs[1]
    np.testing.assert_array_equal(C[:2], C0[:2])  # fixed centres stay
    assert n_iter > 5
    # a fixed point: every label is the nearest centre, every moving centre its points' mean
    np.testing.assert_array_equal(labels, nearest_brute(problem.X, C))
    w = problem.w
    for j in range(2, k):
        mine = labels == j
        np.testing.assert_allclose(C[j], (w[mine, None] * problem.X[mine]).sum(0) / w[mine].sum(), rtol=0, atol=1e-9)


def test_sums_that_would_round_stay_on_one_thread(elephant, monkeypatch):
    problem = prepare_colors(elephant, color_space="oklab").problem
    assert not _lloyd._exact_sums(problem.X, problem.w)
    assert not _lloyd._exact_sums(np.array([[1.0, 2.0]]), np.array([0.5]))
    assert not _lloyd._exact_sums(np.array([[2.0**40]]), np.array([2.0**13]))  # integers past 2**52
    called = []
    monkeypatch.setattr(_lloyd, "ThreadPoolExecutor", lambda n: called.append(n))
    C0, guess = _start(problem.X, 32)
    _lloyd.lloyd(problem.X, problem.w, C0, guess, 0, 20, 0.0, 5.0, 8.0, n_threads=4)
    assert called == []


@pytest.mark.parametrize("k", [16, 64, 256])
def test_quantizer_result_does_not_depend_on_the_thread_count(elephant, monkeypatch, k):
    # K <= 64: 8 k-means++ restarts on the histogram bins, side by side on 2 threads; then the
    # refinement on the 86,468 colours with the assignment step split (over-relaxed at K = 256)
    results = []
    for threads in ("1", "2"):
        monkeypatch.setenv("IMCOMPRESS_NUM_THREADS", threads)
        q = KMeansQuantizer(k)
        results.append((q.fit_predict(elephant), q.palette_, q.cluster_centers_, q.inertia_))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_max_threads_follows_the_environment(monkeypatch):
    from imcompress._threads import max_threads

    monkeypatch.setenv("IMCOMPRESS_NUM_THREADS", "1")
    assert max_threads() == 1
    monkeypatch.setenv("IMCOMPRESS_NUM_THREADS", "nonsense")
    assert max_threads() >= 1


@pytest.mark.parametrize("k", [16, 256])
def test_scan_lengths_trade_work_not_results(elephant, k):
    # the re-sort threshold and the scan margin only move work between scans and sorts
    from imcompress.kmeans._solver import MARGIN_STD, RESORT_STD, scan_lengths

    problem = prepare_colors(elephant).problem
    C0, guess = _start(problem.X, k)
    std = np.sqrt(problem.variance)
    resort, margin = scan_lengths(problem, C0)
    assert 0 < resort <= RESORT_STD * std and 0 < margin <= MARGIN_STD * std
    if k == 256:  # centres closer than a fraction of a std: the gap terms are the smaller
        assert margin < MARGIN_STD * std
    settings = [(resort, margin), (RESORT_STD * std, MARGIN_STD * std), (0.0, 0.0), (1e9, 3 * std)]
    runs = [_lloyd.lloyd(problem.X, problem.w, C0, guess, 0, 30, 0.0, r, m, n_threads=1) for r, m in settings]
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


def test_over_relaxed_lloyd_keeps_labels_exact_and_converges_to_a_lloyd_fixed_point(elephant):
    problem = prepare_colors(elephant).problem
    X, w = problem.X, problem.w
    C0, guess = _start(X, 256)
    capped = {relax: _lloyd.lloyd(X, w, C0, guess, 2, 20, 0.0, 5.0, 8.0, relax=relax, n_threads=1) for relax in (1.0, 1.8)}
    C, labels, inertia, n_iter = capped[1.8]
    assert n_iter == 20
    np.testing.assert_array_equal(labels, nearest_brute(X, C))  # exact for the centres it returns
    np.testing.assert_array_equal(C[:2], C0[:2])  # fixed centres stay
    assert inertia < capped[1.0][2]  # further in the same number of iterations
    runs = {t: _lloyd.lloyd(X, w, C0, guess, 2, 300, 0.0, 5.0, 8.0, relax=1.8, n_threads=t) for t in (1, 2)}
    for a, b in zip(runs[1], runs[2]):
        np.testing.assert_array_equal(a, b)
    C, labels, inertia, n_iter = runs[1]
    assert n_iter < 300
    np.testing.assert_array_equal(labels, nearest_brute(X, C))
    for j in range(2, 256):
        mine = labels == j
        np.testing.assert_allclose(C[j], (w[mine, None] * X[mine]).sum(0) / w[mine].sum(), rtol=0, atol=1e-9)
