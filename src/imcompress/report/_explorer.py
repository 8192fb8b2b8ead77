"""The explorer's numbers: every slider position of every method, as a real file.

:func:`explore` encodes the image with each codec that declares a
:class:`~imcompress.codecs.Slider`, at each of the slider's positions,
decodes the file and measures it (true bytes, bpp, RMSE, PSNR, SSIM in
float64), and asks the codec what a learner should see beside it
(:meth:`~imcompress.codecs.Codec.explain`: K-means its palette, row PCA its
n and stored values). Nothing here knows a method's name: the facts come
from the codec classes. The previews the page shows are made later, to fit
the page's size budget (:mod:`._previews`).
"""

from __future__ import annotations

from .. import metrics, rd
from .._errors import ImcompressError
from ._results import Explorer, MethodExplorer, PeerPoint, Setting

__all__ = ["Explorer", "MethodExplorer", "Setting", "explore"]


def slider_methods() -> list:
    """Registered methods whose codec declares a slider, by name."""
    from ..codecs import available_methods, get_codec

    return [m for m in available_methods() if get_codec(m).slider is not None]


def _measure(image, codec, *, value, text):
    from ..codecs import decompress
    from ..format import unpack_container

    data = codec.encode(image)
    decoded = decompress(data)
    return Setting(
        value=value, text=text, nbytes=len(data), bpp=metrics.bits_per_pixel(len(data), image.shape),
        rmse=metrics.rmse(image, decoded), psnr=metrics.psnr(image, decoded), ssim=metrics.ssim(image, decoded),
        explain=type(codec).explain(unpack_container(data), decoded), image=decoded,
    )


def _peer_points(image, method, curve=None) -> list:
    """The peer's files: from the rate-distortion section's curve when it has one, else measured here."""
    if curve is not None:
        return [PeerPoint(e.setting, e.nbytes, e.bpp, e.psnr, e.ssim) for e in curve]
    out = []
    for q in rd.PEERS[method].rate_ladder:
        nbytes, decoded = rd.peer_encode(image, method, q)
        out.append(PeerPoint(float(q), int(nbytes), metrics.bits_per_pixel(nbytes, image.shape),
                             metrics.psnr(image, decoded), metrics.ssim(image, decoded)))
    return sorted(out, key=lambda p: p.bpp)


def explore(image, *, methods=None, values=None, random_state: int = 0, rd_result=None,
            max_pixels: int | None = None, progress=None) -> Explorer:
    """Measure every slider position of every method on ``image``.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), dtype uint8
    methods : list of str, optional
        Default: every registered codec with a slider (:func:`slider_methods`).
    values : dict of str to list, optional
        Slider positions replacing a method's own (e.g. the study's K).
    random_state : int, default=0
        Seed of the codecs that take one.
    rd_result : RDResult, optional
        The rate-distortion section's measurements: its peers' curves (and its
        measured region) are reused instead of measuring again.
    max_pixels : int, optional
        Explore the central region of a larger image (default: as the
        rate-distortion section, ``RD_MAX_PIXELS``).
    progress : callable, optional
        Called with a message before each method.

    Returns
    -------
    Explorer

    Examples
    --------
    >>> from imcompress import sample_image
    >>> from imcompress.report._explorer import explore
    >>> ex = explore(sample_image()[:32, :32], methods=["kmeans"], values={"kmeans": [2, 4]})
    >>> [s.text for s in ex.methods[0].settings]
    ['2', '4']
    """
    from ..codecs import get_codec
    from .._validation import check_image
    from ._rd import RD_MAX_PIXELS, central_region

    image = check_image(image, channels=3)
    if rd_result is not None:
        region = tuple(rd_result.region)
    else:
        region = central_region(image.shape, RD_MAX_PIXELS if max_pixels is None else int(max_pixels))
    top, left, rh, rw = region
    image = image[top:top + rh, left:left + rw]
    methods = slider_methods() if methods is None else list(methods)
    values = dict(values or {})
    notes = []
    out = []
    for name in methods:
        cls = get_codec(name)
        slider = cls.slider
        if slider is None:
            continue
        if progress is not None:
            progress(f"explorer: {name} at every {slider.label}")
        settings = []
        for v in values.get(name, slider.values):
            try:
                codec = rd.make_codec(name, random_state=random_state, **{slider.parameter: v})
                settings.append(_measure(image, codec, value=float(v), text=slider.text(v)))
            except ImcompressError as exc:
                notes.append(f"explorer: {name} at {slider.parameter}={v} skipped: {exc}")
        if settings:
            out.append(MethodExplorer(name, cls.display_name(), slider.parameter, slider.label, tuple(settings)))
    peers = {}
    for name in rd.available_peers():
        curve = None if rd_result is None else rd_result.curves.get(name)
        if rd_result is not None and curve is None:
            continue  # the rate-distortion section left it out
        if progress is not None and curve is None:
            progress(f"explorer: {name}")
        peers[name] = _peer_points(image, name, curve)
    return Explorer(image=image, region=region, methods=out, peers=peers, notes=notes)
