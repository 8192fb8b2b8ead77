"""Figures, sections and write_report: content, self-containment and safe writing."""

import base64
import io
import json
import os
import re
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure as MplFigure
from PIL import Image
from threadpoolctl import threadpool_limits

from imcompress import OutputExistsError, UsageError, WriteError
from imcompress.report import (
    Figure,
    Section,
    Table,
    Text,
    check_report_dir,
    figures,
    register_section,
    report_sections,
    study,
    write_report,
)
from imcompress.report import _sections, _write


@pytest.fixture(scope="module")
def result(sample):
    with threadpool_limits(limits=1, user_api="blas"):
        return study(sample[100:164, 150:246], ks=[2, 3, 4, 5, 6], variances=[0.8, 0.95],
                     source="crop <of> sample", file_bytes=12_345, codecs=False)


def _light():
    """A one-figure report: for tests about writing, not about the study's content."""
    fig = MplFigure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1])
    return [Section("light", "Light", [Text("<p>x</p>"), Figure("only", fig)])]


@pytest.fixture(scope="module")
def written(result, tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "report"
    files = write_report(result, out)
    return out, files


# -- figures -------------------------------------------------------------------------


@pytest.mark.parametrize("name, func", figures.FIGURES)
def test_each_figure_is_a_figure_with_content(result, name, func):
    fig = func(result)
    assert isinstance(fig, MplFigure) and fig.axes
    png = figures.figure_png(fig)
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.width >= 400 and img.height >= 200


def test_figures_do_not_use_pyplot_state(result):
    for _, func in figures.FIGURES:
        func(result)
    # the library never imports pyplot, so no global figure can pile up
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def _titles(fig):
    return " ".join(ax.get_title() for ax in fig.axes) + " " + (fig._suptitle.get_text() if fig._suptitle else "")


def test_figure_titles_carry_the_numbers(result):
    text = _titles(figures.kmeans_reconstructions(result))
    for k in (2, 4, 6):
        m = result.kmeans[k]
        assert f"K = {k}" in text
        assert f"RMSE {m.rmse:.2f}" in text and f"SSIM {m.ssim:.3f}" in text
    text = _titles(figures.original(result))
    assert "(64, 96, 3)" in text and "uint8" in text and f"{result.unique_colors:,}" in text
    text = _titles(figures.pca_channels(result))
    p = result.pca[0]
    for c in range(3):
        assert f"{p.scores[c].size:,} values" in text
    text = _titles(figures.pca_rescale(result))
    assert f"RMSE {result.pca[-1].rmse_minmax:.2f}" in text and f"RMSE {result.pca[-1].rmse:.2f}" in text


def test_inertia_figure_marks_the_elbow(result):
    ax = figures.inertia(result).axes[0]
    xs, ys = ax.lines[0].get_data()
    assert list(xs) == result.ks and list(ys) == result.inertias
    if result.elbow_k is not None:
        assert any(f"K = {result.elbow_k}" in t.get_text() for t in ax.get_legend().get_texts())


def test_explained_variance_figure(result):
    ax = figures.explained_variance(result).axes[0]
    cum = np.cumsum(result.explained_variance_ratio[0])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), cum)
    texts = " ".join(t.get_text() for t in ax.texts)
    for p in result.pca:
        assert "n = " + "/".join(map(str, p.n_components)) in texts


def test_pick_unknown_variance(result):
    with pytest.raises(UsageError, match=r"variance=0.5 is not in this study"):
        figures.pca_channels(result, variance=0.5)


# -- the written report ----------------------------------------------------------------


def test_report_files(written, result):
    out, files = written
    assert files.index == out / "index.html" and files.index.is_file()
    assert sorted(p.name for p in out.iterdir()) == ["figures", "index.html", "metrics.json"]
    names = sorted(p.name for p in (out / "figures").iterdir())
    assert names == sorted(f.name for f in files.figures) and len(names) == len(figures.FIGURES)
    for path in files.figures:
        assert Image.open(path).format == "PNG"
    # no temporary folder left beside the report
    assert [p.name for p in out.parent.iterdir()] == ["report"]


def test_index_is_self_contained(written):
    out, files = written
    page = files.index.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == len(files.figures)
    assert all(s.startswith("data:image/webp;base64,") for s in srcs)
    # no explorer without codecs: no script at all
    assert "href=" not in page and "<script" not in page and "url(" not in page
    # every embedded image is the PNG written beside it, as WebP: same size, same picture
    for s, path in zip(srcs, files.figures):
        embedded = Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1])))
        png = Image.open(path)
        assert embedded.format == "WEBP" and embedded.size == png.size
        a = np.asarray(embedded.convert("RGB"), dtype=np.float64)
        b = np.asarray(png.convert("RGB"), dtype=np.float64)
        assert 10 * np.log10(255**2 / max(np.mean((a - b) ** 2), 1e-12)) > 30
    assert "crop &lt;of&gt; sample" in page  # user text is escaped


def test_index_states_the_corrections(written, result):
    page = written[1].index.read_text(encoding="utf-8")
    c = result.corrections()
    assert f"{c['rmse_uint8_wraparound']['wrapped']:.2f}" in page
    assert f"{c['rmse_uint8_wraparound']['true']:.2f}" in page
    assert "8.32" in page and "12.65" in page
    assert f"{c['pca_rescale']['minmax']['rmse']:.2f}" in page
    assert f"{c['pca_size']['true_values']:,}" in page and f"{c['pca_size']['scores_only_values']:,}" in page


def test_metrics_json(written, result):
    data = json.loads((written[0] / "metrics.json").read_text(encoding="utf-8"))
    assert data["image"]["height"] == 64 and data["image"]["width"] == 96
    assert data["image"]["unique_colors"] == result.unique_colors
    assert data["image"]["file_bytes"] == 12_345
    assert [e["k"] for e in data["kmeans"]["sweep"]] == result.ks
    assert data["kmeans"]["sweep"][0]["inertia"] == pytest.approx(result.inertias[0])
    assert data["kmeans"]["elbow_k"] == result.elbow_k
    t = data["pca_rows"]["thresholds"]
    assert [e["variance"] for e in t] == [0.8, 0.95]
    assert t[1]["n_components"] == list(result.pca[1].n_components)
    assert t[1]["rmse"] == pytest.approx(result.pca[1].rmse)
    assert data["generator"].startswith("imcompress ")


def test_existing_report_needs_force(written, result):
    out, _ = written
    before = (out / "metrics.json").read_bytes()
    with pytest.raises(OutputExistsError, match="not empty; use -f/--force"):
        write_report(result, out)
    assert (out / "metrics.json").read_bytes() == before


def test_force_replaces_a_report(result, tmp_path):
    out = tmp_path / "r"
    write_report(result, out, sections=_light())
    (out / "figures" / "stale.png").write_bytes(b"old")
    write_report(result, out, force=True, sections=_light())
    assert not (out / "figures" / "stale.png").exists()
    assert (out / "figures" / "only.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_force_never_deletes_foreign_files(result, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(OutputExistsError, match="'thesis.tex', which is not part of a report"):
        write_report(result, out, force=True, sections=_light())
    assert (out / "thesis.tex").read_text() == "precious"


def test_empty_folder_is_used(result, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    write_report(result, out, sections=_light())
    assert (out / "index.html").is_file()


def test_write_errors(result, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(WriteError, match="is a file, not a folder"):
        write_report(result, tmp_path / "file", sections=_light())
    with pytest.raises(WriteError, match="does not exist; create it first"):
        write_report(result, tmp_path / "missing" / "report", sections=_light())
    with pytest.raises(WriteError, match="does not exist"):
        check_report_dir(tmp_path / "file" / "report")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_parent(result, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(WriteError, match="is not writable"):
            write_report(result, ro / "report", sections=_light())
    finally:
        ro.chmod(0o755)


def test_failure_leaves_nothing_behind(result, tmp_path, monkeypatch):
    calls = []

    def broken(fig, *, dpi=100):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return b"png"

    monkeypatch.setattr(_write._figs, "figure_png", broken)
    fig = MplFigure()
    sections = _light() + [Section("two", "Two", [Figure("second", fig)])]
    with pytest.raises(OSError, match="No space left"):
        write_report(result, tmp_path / "r", sections=sections)
    assert list(tmp_path.iterdir()) == []


def test_failure_while_writing_keeps_the_old_report(result, tmp_path, monkeypatch):
    out = tmp_path / "r"
    write_report(result, out, sections=_light())
    old = (out / "index.html").read_bytes()
    real_write = _write.Path.write_text

    def failing_write(self, *args, **kwargs):
        if self.name == "index.html":
            raise OSError(28, "No space left on device")
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(_write.Path, "write_text", failing_write)
    with pytest.raises(WriteError, match="cannot write the report .No space left on device"):
        write_report(result, out, force=True, sections=_light())
    assert (out / "index.html").read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


# -- sections ----------------------------------------------------------------------------


def test_sections_are_a_list(result):
    sections = report_sections(result)
    assert [s.id for s in sections][:5] == ["original", "kmeans", "pca-rows", "comparison", "corrections"]
    assert all(isinstance(s, Section) for s in sections)


def test_extra_section_appended(result, tmp_path):
    fig = MplFigure()
    fig.add_subplot().plot([1, 2], [3, 4])
    extra = Section("pca_patch", "Patch PCA", [Text("<p>patches</p>"), Figure("10-extra", fig, "a caption"),
                                               Table(["a", "b"], [[1, 2.5]])], metrics={"x": float("inf"), "y": 2})
    files = write_report(result, tmp_path / "r", extra_sections=[extra])
    page = files.index.read_text(encoding="utf-8")
    assert "Patch PCA" in page and "a caption" in page and "<td>2.50</td>" in page
    assert page.index('id="pca_patch"') > page.index('id="corrections"')  # after the study's sections
    data = json.loads(files.metrics.read_text(encoding="utf-8"))
    assert data["pca_patch"] == {"x": None, "y": 2}
    assert (tmp_path / "r" / "figures" / "10-extra.png").is_file()


def test_register_section(result, monkeypatch):
    monkeypatch.setattr(_sections, "_EXTRA_BUILDERS", [])
    register_section(lambda r: Section("more", "More", [Text(f"<p>{r.shape}</p>")]))
    register_section(lambda r: None)
    ids = [s.id for s in report_sections(result)]
    assert ids[-1] == "more" and ids.count("more") == 1
    with pytest.raises(UsageError, match="needs a callable"):
        register_section("not callable")


def test_duplicate_ids_and_figure_names(result, tmp_path):
    with pytest.raises(UsageError, match="section ids must be unique"):
        write_report(result, tmp_path / "a", sections=_light(), extra_sections=[Section("light", "again")])
    fig = MplFigure()
    with pytest.raises(UsageError, match="figure name 'only' is used twice"):
        write_report(result, tmp_path / "b", sections=_light(), extra_sections=[Section("x", "x", [Figure("only", fig)])])
    assert list(tmp_path.iterdir()) == []


def test_rmse_vs_ssim_sentence(result):
    text = _sections._disagreement(result)
    pairs = [(result.kmeans[k], p) for k in result.show_ks for p in result.pca]
    if any((m.rmse - p.rmse) * (m.ssim - p.ssim) > 0 for m, p in pairs):
        assert "beats" in text and "loses on SSIM" in text
        nums = [float(x) for x in re.findall(r"\d+\.\d+", text)]
        assert nums[0] < nums[1] and nums[2] < nums[3]  # lower RMSE, yet lower SSIM
    else:
        assert "rank every" in text


def test_current_folder_refused(result, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for target in (".", ".."):
        with pytest.raises(WriteError, match="is the current folder or above it"):
            write_report(result, target, force=True, sections=_light())
    assert list(tmp_path.iterdir()) == []
