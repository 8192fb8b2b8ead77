"""The explorer in a real browser: Debian's Chromium, headless, driven by Playwright.

One small report is written once per session and loaded from disk. The tests
move the sliders by keyboard and mouse, drag the divider, zoom, toggle the
difference map, click the chart, and take screenshots at 1280 and 375 px,
failing on any console error or request. They skip only where Chromium is
absent outside CI (``CI`` unset); in CI a missing Chromium fails.
"""

import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _need_chromium():
    missing = []
    if not Path(CHROMIUM).is_file():
        missing.append(f"{CHROMIUM} (Debian's chromium package)")
    try:
        import playwright.sync_api  # noqa: F401 - is it installed?
    except ImportError:
        missing.append("the playwright Python package")
    if missing:
        reason = "browser tests need " + " and ".join(missing) + "; `make test` installs them"
        if _in_ci():
            pytest.fail("CI=true but " + reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def report(sample, tmp_path_factory):
    """A small real report (every codec's slider), written once."""
    _need_chromium()
    from imcompress.report import study, write_report

    out = tmp_path_factory.mktemp("explorer") / "report"
    result = study(sample[120:192, 160:256], ks=[2, 4, 8], variances=[0.9], source="face crop", rd=False)
    files = write_report(result, out)
    return files, json.loads(files.metrics.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def browser(report):
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="imc-chromium-")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=ARGS)
        yield ctx
        ctx.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser, report):
    files, _ = report
    page = browser.new_page()
    page.set_viewport_size({"width": 1280, "height": 900})
    problems = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("request", lambda r: None if r.url.startswith(("data:", "file:")) else problems.append(
        f"request to {r.url}"))
    page.goto(files.index.as_uri())
    page.wait_for_function("document.getElementById('canvas-recon').dataset.shown !== undefined")
    yield page
    page.close()
    assert problems == [], problems


def _canvas_hash(page, cid="canvas-recon") -> str:
    data = page.evaluate(f"""() => {{
        const c = document.getElementById('{cid}');
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data.filter((_, i) => i % 7 == 0));
    }}""")
    return hashlib.sha1(bytes(data)).hexdigest()


def _wait_shown(page, value):
    page.wait_for_function(f"document.getElementById('canvas-recon').dataset.shown === {json.dumps(value)}")


def _numbers(page) -> dict:
    return {k: page.inner_text(f"#num-{k}") for k in ("bytes", "bpp", "rmse", "psnr", "ssim")}


def _expected(setting) -> dict:
    psnr = setting["psnr"]
    return {"bytes": f"{setting['bytes']:,} B", "bpp": f"{setting['bpp']:.3f}", "rmse": f"{setting['rmse']:.2f}",
            "psnr": "∞" if psnr is None else f"{psnr:.2f} dB", "ssim": f"{setting['ssim']:.4f}"}


def test_every_codec_has_a_slider(page, report):
    _, metrics = report
    methods = metrics["explorer"]["methods"]
    import imcompress
    from imcompress.codecs import get_codec

    assert [m["method"] for m in methods] == ["kmeans", "pca-rows", "pca-patch"]
    assert {m["method"] for m in methods} == {n for n in imcompress.available_methods() if get_codec(n).slider}
    assert page.locator("input.slider").count() == len(methods)
    for i, m in enumerate(methods):
        slider = page.locator(f"#slider-{i}")
        assert slider.get_attribute("max") == str(len(m["settings"]) - 1)
        label = page.locator(f"label[for=slider-{i}]").inner_text()
        assert m["slider_label"] in label  # labelled for screen readers
        assert m["slider_label"] in slider.get_attribute("aria-valuetext")
    assert [s["text"] for s in methods[0]["settings"]] == ["2", "4", "8"]  # the sweep's K


@pytest.mark.parametrize("how", ["keyboard", "mouse"])
def test_sliders_change_picture_and_numbers(page, report, how):
    _, metrics = report
    for i, m in enumerate(metrics["explorer"]["methods"]):
        slider = page.locator(f"#slider-{i}")
        start = int(slider.input_value())
        if how == "keyboard":
            slider.focus()
            _wait_shown(page, f"{i}:{start}")
            before = _canvas_hash(page)
            page.keyboard.press("Home")
            target = 0
        else:
            slider.click()  # activates the method
            _wait_shown(page, f"{i}:{int(slider.input_value())}")
            before = _canvas_hash(page)
            box = slider.bounding_box()
            page.mouse.click(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
            target = len(m["settings"]) - 1
        assert int(slider.input_value()) == target
        _wait_shown(page, f"{i}:{target}")
        assert _canvas_hash(page) != before
        assert _numbers(page) == _expected(m["settings"][target])
        assert page.inner_text(f"#value-{i}") == m["settings"][target]["text"]
        assert m["settings"][target]["text"] in slider.get_attribute("aria-valuetext")
        if how == "keyboard":
            page.keyboard.press("ArrowRight")
            _wait_shown(page, f"{i}:1")
            assert _numbers(page) == _expected(m["settings"][1])


def test_kmeans_palette_and_pca_facts(page, report):
    _, metrics = report
    km, pr = metrics["explorer"]["methods"][:2]
    page.locator("#slider-0").focus()
    page.keyboard.press("End")
    _wait_shown(page, f"0:{len(km['settings']) - 1}")
    swatches = page.locator("#palette [role=listitem]")
    palette = km["settings"][-1]["palette"]
    assert swatches.count() == len(palette) <= 8
    shares = [float(swatches.nth(j).get_attribute("aria-label").split(": ")[1].rstrip(" %")) for j in
              range(swatches.count())]
    assert sum(shares) == pytest.approx(100, abs=0.5)
    assert shares == [round(100 * p[1], 1) for p in palette]
    page.locator("#slider-1").focus()
    page.keyboard.press("Home")
    _wait_shown(page, "1:0")
    facts = page.inner_text("#facts")
    for label, text in pr["settings"][0]["facts"]:
        assert label in facts and text in facts
    assert page.locator("#palette [role=listitem]").count() == 0


def test_divider_zoom_and_difference_map(page, report):
    files, _ = report
    page.locator("#view").scroll_into_view_if_needed()
    view = page.locator("#stage").bounding_box()
    page.mouse.move(view["x"] + view["width"] / 2, view["y"] + view["height"] / 2)
    page.mouse.down()
    page.mouse.move(view["x"] + view["width"] / 4, view["y"] + view["height"] / 2, steps=4)
    page.mouse.up()
    split = int(page.input_value("#split"))
    assert 20 <= split <= 30
    assert page.evaluate("document.getElementById('canvas-recon').style.clipPath") == f"inset(0px 0px 0px {split}%)"
    page.focus("#split")
    page.keyboard.press("End")
    assert page.input_value("#split") == "100"
    # zoom: real pixels, nearest neighbour
    w = int(page.get_attribute("#canvas-recon", "width"))
    page.select_option("#zoom", "4")
    stage = page.locator("#stage").bounding_box()
    assert stage["width"] == pytest.approx(4 * w, abs=1)
    assert page.evaluate("getComputedStyle(document.getElementById('canvas-recon')).imageRendering") == "pixelated"
    page.select_option("#zoom", "0")
    # difference map: amplified |original - reconstruction|
    page.locator("#slider-0").focus()
    shown = page.get_attribute("#canvas-recon", "data-shown")
    before = _canvas_hash(page)
    page.check("#diff")
    _wait_shown(page, shown + ":diff")
    assert _canvas_hash(page) != before
    mean = page.evaluate("""() => { const c = document.getElementById('canvas-recon');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let s = 0;
        for (let i = 0; i < d.length; i += 4) s += d[i] + d[i + 1] + d[i + 2]; return s / (d.length / 4 * 3); }""")
    assert 1 < mean < 200  # errors times the gain: dark, not black
    page.uncheck("#diff")
    _wait_shown(page, shown)


def test_clicking_a_chart_point_moves_the_slider(page, report):
    _, metrics = report
    m = metrics["explorer"]["methods"][2]
    point = page.locator("svg.chart").first.locator("circle.pt[data-m='2'][data-i='0']")
    point.hover()
    tip = page.locator("#tooltip")
    assert tip.is_visible() and m["settings"][0]["text"] in tip.inner_text()
    assert f"{m['settings'][0]['bytes']:,} B" in tip.inner_text()
    point.click()
    assert page.input_value("#slider-2") == "0"
    _wait_shown(page, "2:0")
    assert _numbers(page) == _expected(m["settings"][0])
    assert "current" in point.get_attribute("class")
    point2 = page.locator("svg.chart").first.locator("circle.pt[data-m='0'][data-i='1']")
    point2.focus()
    page.keyboard.press("Enter")
    assert page.input_value("#slider-0") == "1"
    assert page.locator("circle.pt.current").count() == 2 * len(metrics["explorer"]["methods"])  # two panels


def _overflowing(page) -> list:
    return page.evaluate("""() => {
        const w = document.documentElement.clientWidth, out = [];
        for (const el of document.querySelectorAll('body *')) {
            if (el.closest('.table-wrap, .view, .print-only, svg, script, style')) continue;
            const r = el.getBoundingClientRect();
            if (r.width && r.right > w + 1) out.push(el.tagName + '#' + el.id + '.' + el.className + ' ' + r.right);
        }
        return out; }""")


@pytest.mark.parametrize("width", [1280, 375])
def test_screenshots_fit_the_width(page, width, tmp_path):
    page.set_viewport_size({"width": width, "height": 900})
    page.wait_for_timeout(100)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert _overflowing(page) == []
    png = page.screenshot(full_page=False)
    shot = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    assert shot.shape[1] == width and shot.std() > 10  # not blank
    explorer = page.locator("#explorer").screenshot()
    pic = np.asarray(Image.open(io.BytesIO(explorer)).convert("RGB"), dtype=np.float64)
    assert pic.shape[1] <= width and pic.std() > 10
    (tmp_path / f"explorer-{width}.png").write_bytes(explorer)
