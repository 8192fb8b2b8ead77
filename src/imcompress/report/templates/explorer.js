// imcompress report explorer: sliders, split view, zoom, difference map, RD chart.
// Hand-written, no dependencies; all data is in #explorer-data (the numbers of metrics.json).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("explorer-data").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var W = data.width, H = data.height;
  var state = { method: 0, index: data.methods.map(function (m) { return m.start; }), split: 50, zoom: 0, diff: false };
  var origPixels = null, images = {}, pending = 0;

  function fmtInt(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
  function fmt(v, d) { return v === null || v === undefined ? "n/a" : Number(v).toFixed(d); }

  function load(uri, done) {
    if (images[uri]) { done(images[uri]); return; }
    var img = new Image();
    img.onload = function () { images[uri] = img; done(img); };
    img.src = uri;
  }

  function pixelsOf(img) {
    var c = document.createElement("canvas");
    c.width = W; c.height = H;
    var g = c.getContext("2d", { willReadFrequently: true });
    g.drawImage(img, 0, 0, W, H);
    return g.getImageData(0, 0, W, H);
  }

  function drawRecon() {
    var m = data.methods[state.method], s = m.settings[state.index[state.method]];
    var canvas = $("canvas-recon"), ctx = canvas.getContext("2d", { willReadFrequently: true });
    var token = ++pending;
    load(s.preview, function (img) {
      if (token !== pending) return;
      if (!state.diff || !origPixels) {
        ctx.drawImage(img, 0, 0, W, H);
      } else {
        var rec = pixelsOf(img), out = ctx.createImageData(W, H);
        var a = origPixels.data, b = rec.data, o = out.data, gain = data.gain;
        for (var i = 0; i < a.length; i += 4) {
          o[i] = Math.min(255, Math.abs(a[i] - b[i]) * gain);
          o[i + 1] = Math.min(255, Math.abs(a[i + 1] - b[i + 1]) * gain);
          o[i + 2] = Math.min(255, Math.abs(a[i + 2] - b[i + 2]) * gain);
          o[i + 3] = 255;
        }
        ctx.putImageData(out, 0, 0);
      }
      canvas.setAttribute("data-shown", state.method + ":" + state.index[state.method] + (state.diff ? ":diff" : ""));
    });
  }

  function showNumbers() {
    var m = data.methods[state.method], s = m.settings[state.index[state.method]];
    $("now-label").textContent = m.label + ", " + m.slider_label + " " + s.text;
    $("num-bytes").textContent = fmtInt(s.bytes) + " B";
    $("num-bpp").textContent = fmt(s.bpp, 3);
    $("num-rmse").textContent = fmt(s.rmse, 2);
    $("num-psnr").textContent = s.psnr === null ? "∞" : fmt(s.psnr, 2) + " dB";
    $("num-ssim").textContent = fmt(s.ssim, 4);
    $("preview-note").textContent = s.preview_note + "; original: " + data.original_note + ".";
    $("recon-legend").textContent = state.diff ? "|original − " + m.label + "| × " + data.gain : m.label + " (" + s.text + ")";
    var facts = $("facts");
    facts.textContent = "";
    (s.facts || []).forEach(function (f) {
      var dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = f[0]; dd.textContent = f[1];
      facts.appendChild(dt); facts.appendChild(dd);
    });
    var pal = $("palette");
    pal.textContent = "";
    (s.palette || []).forEach(function (p) {
      var sw = document.createElement("span"), pct = (100 * p[1]).toFixed(1) + " %";
      sw.setAttribute("role", "listitem");
      sw.setAttribute("aria-label", p[0] + ": " + pct);
      sw.title = p[0] + ": " + pct;
      sw.style.background = p[0];
      sw.style.width = Math.max(1.6, 30 * p[1]) + "em";
      var lum = parseInt(p[0].substr(1, 2), 16) * 0.299 + parseInt(p[0].substr(3, 2), 16) * 0.587 + parseInt(p[0].substr(5, 2), 16) * 0.114;
      sw.style.color = lum > 140 ? "#000" : "#fff";
      sw.textContent = p[1] >= 0.04 ? pct : "";
      pal.appendChild(sw);
    });
  }

  function markChart() {
    var pts = document.querySelectorAll("circle.pt");
    for (var k = 0; k < pts.length; k++) {
      var c = pts[k], mi = +c.getAttribute("data-m"), i = +c.getAttribute("data-i");
      c.classList.toggle("current", state.index[mi] === i);
    }
  }

  function update() {
    data.methods.forEach(function (m, mi) {
      var s = m.settings[state.index[mi]], slider = $("slider-" + mi);
      slider.value = state.index[mi];
      slider.setAttribute("aria-valuetext", m.slider_label + " " + s.text);
      $("value-" + mi).textContent = s.text;
      $("method-" + mi).classList.toggle("active", mi === state.method);
    });
    var radio = document.querySelector('input[name="explorer-method"][value="' + state.method + '"]');
    if (radio) radio.checked = true;
    showNumbers();
    drawRecon();
    markChart();
  }

  function setSplit(pct) {
    state.split = Math.max(0, Math.min(100, Math.round(pct)));
    $("split").value = state.split;
    $("split-value").textContent = state.split + " %";
    $("split").setAttribute("aria-valuetext", "reconstruction from " + state.split + " % of the width");
    $("canvas-recon").style.clipPath = "inset(0 0 0 " + state.split + "%)";
    $("divider").style.left = state.split + "%";
  }

  function setZoom(z) {
    state.zoom = z;
    var stage = $("stage");
    // fit: the whole picture in the width and in 70 % of the window's height;
    // zoomed: W * z CSS pixels, scrolled inside the view
    $("viewer").style.width = z ? "100%" : "min(100%, " + (70 * W / H).toFixed(2) + "vh)";
    stage.style.width = z ? (W * z) + "px" : "100%";
    stage.setAttribute("data-zoom", String(z));
  }

  // sliders, method choice
  data.methods.forEach(function (m, mi) {
    $("slider-" + mi).addEventListener("input", function (e) {
      state.method = mi;
      state.index[mi] = +e.target.value;
      update();
    });
    $("slider-" + mi).addEventListener("focus", function () {
      if (state.method !== mi) { state.method = mi; update(); }
    });
  });
  document.querySelectorAll('input[name="explorer-method"]').forEach(function (r) {
    r.addEventListener("change", function () { state.method = +r.value; update(); });
  });

  // divider: range input (keyboard) and dragging on the picture
  $("split").addEventListener("input", function (e) { setSplit(+e.target.value); });
  var view = $("view"), dragging = false;
  function dragTo(e) {
    var r = $("stage").getBoundingClientRect();
    setSplit(100 * (e.clientX - r.left) / r.width);
  }
  view.addEventListener("pointerdown", function (e) { dragging = true; view.setPointerCapture(e.pointerId); dragTo(e); });
  view.addEventListener("pointermove", function (e) { if (dragging) dragTo(e); });
  view.addEventListener("pointerup", function () { dragging = false; });
  view.addEventListener("pointercancel", function () { dragging = false; });
  view.addEventListener("keydown", function (e) {
    var step = e.shiftKey ? 10 : 2;
    if (e.key === "ArrowLeft") { setSplit(state.split - step); e.preventDefault(); }
    if (e.key === "ArrowRight") { setSplit(state.split + step); e.preventDefault(); }
  });

  $("zoom").addEventListener("change", function (e) { setZoom(+e.target.value); });
  $("diff").addEventListener("change", function (e) { state.diff = e.target.checked; showNumbers(); drawRecon(); });

  // chart: hover shows numbers, click (or Enter) moves the slider
  var tip = $("tooltip");
  function showTip(c, x, y) {
    tip.textContent = c.getAttribute("aria-label") || c.textContent;
    tip.hidden = false;
    tip.style.left = Math.min(x + 12, window.innerWidth - tip.offsetWidth - 4) + "px";
    tip.style.top = (y + 12) + "px";
  }
  document.querySelectorAll("svg.chart circle").forEach(function (c) {
    c.addEventListener("mouseenter", function (e) { showTip(c, e.clientX, e.clientY); });
    c.addEventListener("mouseleave", function () { tip.hidden = true; });
    c.addEventListener("focus", function () { var r = c.getBoundingClientRect(); showTip(c, r.right, r.top); });
    c.addEventListener("blur", function () { tip.hidden = true; });
    if (!c.classList.contains("pt")) return;
    function pick() {
      var mi = +c.getAttribute("data-m");
      state.method = mi;
      state.index[mi] = +c.getAttribute("data-i");
      update();
    }
    c.addEventListener("click", pick);
    c.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { pick(); e.preventDefault(); } });
  });

  load(data.original, function (img) {
    $("canvas-original").getContext("2d", { willReadFrequently: true }).drawImage(img, 0, 0, W, H);
    origPixels = pixelsOf(img);
    $("canvas-original").setAttribute("data-shown", "original");
    if (state.diff) drawRecon();
  });
  setSplit(50);
  setZoom(0);
  update();
})();
