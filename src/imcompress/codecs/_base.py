"""The codec plugin interface and the registry keyed by method name.

A codec is one class: ``__init__`` stores parameters (keyword-only),
``encode_sections`` turns an image into the sections of a ``.imc`` container,
and the class method ``decode`` turns a parsed container back into pixels.
Adding a method means adding one module that defines a subclass and decorates
it with :func:`register_codec`.

Codecs are stateless after ``__init__``: encoding never changes the object,
and what a call chose (K, components, ...) comes back with the bytes in a
:class:`Compressed`, never on ``self``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .._errors import CorruptFileError, InputError, UsageError
from .._validation import check_image
from ..format import MAX_SIDE, Container, pack_container, unpack_container

__all__ = [
    "Codec",
    "Compressed",
    "Option",
    "Reconstruction",
    "Slider",
    "register_codec",
    "get_codec",
    "codec_for_id",
    "available_methods",
    "compress",
    "decompress",
    "inspect",
]

_REGISTRY: dict[str, type["Codec"]] = {}
_BY_ID: dict[int, type["Codec"]] = {}


@dataclass(frozen=True)
class Option:
    """A method option, declared as data so the CLI can build it.

    Parameters
    ----------
    name : str
        Keyword passed to :meth:`Codec.from_options` (usually an ``__init__``
        parameter).
    flags : tuple of str
        Command-line spellings, e.g. ``("-k", "--colors")``. Two codecs may
        declare the same long flag (``--quality``) only with the same ``type``;
        each codec then parses the value itself.
    type : {"str", "int", "float", "flag"}, default="str"
        How the CLI converts the text; ``"flag"`` is a boolean switch.
    help : str
        One-line help shown by ``--help``.
    default : object, optional
        Shown in the help only; the codec's own default applies when the user
        does not give the option (options not given are never passed).
    metavar : str, optional
    flag_value : object, optional
        Makes the value optional: the flag given alone means this value
        (``--dither`` alone is ``--dither 1.0``).
    """

    name: str
    flags: tuple
    type: str = "str"
    help: str = ""
    default: Any = None
    metavar: str | None = None
    flag_value: Any = None

    @property
    def long_flag(self) -> str:
        """The first ``--long`` spelling, the option's identity in the CLI."""
        for flag in self.flags:
            if flag.startswith("--"):
                return flag
        return self.flags[0]


@dataclass(frozen=True)
class Compressed:
    """What one :meth:`Codec.compress` call produced.

    Attributes
    ----------
    data : bytes
        The complete file (an ``.imc`` container, or a PNG for ``format="png"``).
    method : str
        The codec's method name.
    format : str
        ``"imc"`` or another of the codec's :attr:`Codec.formats`.
    shape : tuple (H, W, C)
        Shape of the encoded image.
    params : dict
        The parameters the call used, as the file stores them; for ``.imc``
        exactly ``imcompress.inspect(data)["params"]`` (K chosen by
        ``"auto"``, components chosen by ``variance``, ...).
    decoded : ndarray of shape (H, W, C), uint8, or None
        The pixels every decoder of ``data`` returns, when the codec built
        them while encoding and guarantees them bit for bit (kmeans,
        pca-rows: the tests check it against :func:`decompress`); None
        otherwise, and then only decoding ``data`` tells.
    mse : float or None
        Mean squared error of ``decoded`` against the input over all pixels
        and channels, as :func:`imcompress.metrics.mse` computes it, bit for
        bit, when the codec knows it without a pass over the pixels (kmeans:
        from its colour table; the tests compare the two); None otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from imcompress import get_codec
    >>> img = np.zeros((4, 6, 3), np.uint8); img[:, 3:] = 255
    >>> out = get_codec("kmeans")(n_colors=2).compress(img)
    >>> out.format, out.params["n_colors"], out.n_bytes == len(out.data)
    ('imc', 2, True)
    """

    data: bytes = field(repr=False)
    method: str
    format: str
    shape: tuple
    params: dict
    decoded: np.ndarray | None = field(default=None, repr=False, compare=False)
    mse: float | None = field(default=None, repr=False, compare=False)

    @property
    def n_bytes(self) -> int:
        """Size of the file in bytes."""
        return len(self.data)

    @property
    def bpp(self) -> float:
        """Bits per pixel (:func:`imcompress.metrics.bits_per_pixel`)."""
        from ..metrics import bits_per_pixel

        return bits_per_pixel(len(self.data), self.shape)

    @property
    def ratio(self) -> float:
        """Raw H*W*C bytes over file bytes (:func:`imcompress.metrics.compression_ratio`)."""
        from ..metrics import compression_ratio

        return compression_ratio(len(self.data), self.shape)


@dataclass(frozen=True)
class Reconstruction:
    """The pixels decoding a file gives, with their error when the encoder knows it.

    A codec's ``encode_*_with_pixels`` may return this in place of the bare
    pixels (see :meth:`Codec.encode_sections_with_pixels`); it becomes
    :attr:`Compressed.decoded` and :attr:`Compressed.mse`.
    """

    pixels: np.ndarray
    mse: float | None = None


@dataclass(frozen=True)
class Slider:
    """The report explorer's slider for a method: one ``__init__`` parameter and its positions.

    Parameters
    ----------
    parameter : str
        The ``__init__`` keyword the slider sets (``"n_colors"``, ``"variance"``...).
    values : tuple
        Its positions, smallest file first.
    label : str
        What the slider is called on the page, e.g. ``"colours K"``.
    format : str, default="{:g}"
        :meth:`str.format` pattern of a value shown beside the slider.
    """

    parameter: str
    values: tuple
    label: str
    format: str = "{:g}"

    def text(self, value) -> str:
        """``value`` as the page shows it."""
        return self.format.format(value)


class Codec(ABC):
    """Base class of the compression methods.

    Subclasses set ``name`` (the ``method=`` value) and ``method_id`` (the
    byte stored in the ``.imc`` header), store their parameters in
    ``__init__`` and implement :meth:`encode_sections`, :meth:`decode` and
    :meth:`describe`; a method writing other formats implements
    :meth:`encode_format`; one with reusable per-image work (an SVD, a colour
    table) implements :meth:`prepare`. Nothing may be stored on ``self``
    outside ``__init__``.

    Class attributes used by the CLI and the target search:

    ``options``
        Tuple of :class:`Option`: the method's command-line options.
    ``formats``
        Output formats the method writes, by file extension; ``"imc"`` always,
        ``"png"`` for methods whose result is a standard image file too.
    ``default_format``
        The one of ``formats`` written when the output name does not tell
        (stdout, no extension): ``"imc"`` unless the method says otherwise.
    ``rate_parameter``
        Name of the ``__init__`` parameter that trades size for quality,
        monotonically (more = larger file, better quality); ``None`` if the
        method has none. :meth:`rate_candidates` lists its values.

    Facts the report and :mod:`imcompress.rd` read, so they never need a method's name:

    ``label``
        The method's name for people (``"K-means"``); defaults to ``name``.
    ``rate_label``
        Short name of the rate knob in tables (``"K"``, ``"n"``, ``"quality"``).
    ``rate_ladder``
        Values of the rate knob at which rate-distortion curves start,
        smallest file first.
    ``rate_continuous``
        True when the knob takes any real value in its range (curves are then
        refined at target bit rates by interpolating it); False for integers.
    ``rate_span``
        ``(low, high)`` of the knob spanning about 0.1..4 bpp on photos, for
        evenly spread curves of a continuous knob (None: use
        :meth:`rate_candidates`).
    ``slider``
        The report explorer's :class:`Slider`, or None for no slider.
    """

    name: ClassVar[str]
    method_id: ClassVar[int]
    options: ClassVar[tuple] = ()
    formats: ClassVar[tuple] = ("imc",)
    default_format: ClassVar[str] = "imc"
    rate_parameter: ClassVar[str | None] = None
    label: ClassVar[str] = ""
    rate_label: ClassVar[str] = "setting"
    rate_ladder: ClassVar[tuple] = ()
    rate_continuous: ClassVar[bool] = False
    rate_span: ClassVar[tuple | None] = None
    slider: ClassVar[Slider | None] = None

    @classmethod
    def display_name(cls) -> str:
        """:attr:`label`, or the method's name when it has none."""
        return cls.label or cls.name

    @classmethod
    def from_options(cls, **values) -> "Codec":
        """Build the codec from CLI option values (only the options given).

        Subclasses override this to parse text values (``"auto"``,
        ``"60-80"``, ``"8,6,6"``) and raise :class:`UsageError` on bad ones.
        """
        return cls(**values)

    def rate_candidates(self, image: np.ndarray) -> list:
        """Values of :attr:`rate_parameter` to search, smallest file first."""
        raise UsageError(f"method {self.name!r} has no rate parameter to search")

    def with_rate(self, value) -> "Codec":
        """A copy of this codec with :attr:`rate_parameter` set to ``value``."""
        if self.rate_parameter is None:
            raise UsageError(f"method {self.name!r} has no rate parameter to search")
        params = self.get_params()
        params[self.rate_parameter] = value
        return type(self)(**params)

    def needs_jit(self, format: str) -> bool:
        """Whether compressing to ``format`` (``"imc"``, ``"png"``) runs kernels on numba's JIT.

        The command line sets numba up, beside the reading of the image, only
        when this is true (numba sets itself up on first use otherwise, only
        slower). Default: True; a codec whose kernels also exist compiled
        ahead of time says when those are used instead.
        """
        return True

    @classmethod
    def decode_needs_jit(cls) -> bool:
        """Whether :meth:`decode` runs kernels on numba's JIT (the command line then sets numba up first).

        Default: True.
        """
        return True

    def prepare(self, image: np.ndarray):
        """Per-image work that codecs differing only in the rate can share.

        A target search calls ``prepared = codec.prepare(image)`` once, then
        ``codec.with_rate(v).compress(image, prepared=prepared)`` for each
        candidate ``v``. The result belongs to the caller (nothing is kept on
        the codec); ``None`` (the default) means there is nothing to share.
        """
        return None

    def compress(self, image: np.ndarray, *, format: str = "imc", icc_profile: bytes | None = None,
                 prepared=None) -> Compressed:
        """Encode ``image`` to a file and say what was chosen.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3|4), dtype uint8
        format : str, default="imc"
            One of :attr:`formats`.
        icc_profile : bytes, optional
            Stored in the file, for the decoder to hand back.
        prepared : object, optional
            :meth:`prepare`'s result for this same image.

        Returns
        -------
        Compressed
        """
        image = check_image(image)
        if format not in self.formats:
            raise UsageError(
                f"method {self.name!r} writes {' or '.join(self.formats)} files, not {format!r}"
            )
        if format == "imc":
            data, pixels = self._encode_imc(image, icc_profile, prepared)
            h, w, _ = image.shape
            params = self.describe(unpack_container(data, max_pixels=h * w))
        else:
            data, params, pixels = self.encode_format_with_pixels(
                image, format=format, icc_profile=icc_profile, prepared=prepared
            )
        err = None
        if isinstance(pixels, Reconstruction):
            pixels, err = pixels.pixels, pixels.mse
        return Compressed(data=data, method=self.name, format=format, shape=image.shape, params=params,
                          decoded=pixels, mse=err)

    def encode_format(self, image: np.ndarray, *, format: str, icc_profile: bytes | None = None,
                      prepared=None) -> tuple:
        """Encode to a format other than ``.imc``: ``(bytes, params)``."""
        raise UsageError(f"method {self.name!r} writes imc files, not {format!r}")  # pragma: no cover

    def encode_format_with_pixels(self, image: np.ndarray, *, format: str, icc_profile: bytes | None = None,
                                  prepared=None) -> tuple:
        """``(bytes, params, pixels)``: :meth:`encode_format` and the decoded pixels
        (see :meth:`encode_sections_with_pixels`); the default has none."""
        data, params = self.encode_format(image, format=format, icc_profile=icc_profile, prepared=prepared)
        return data, params, None

    def encode_sections_with_pixels(self, image: np.ndarray, *, icc_profile: bytes | None = None,
                                    prepared=None) -> tuple:
        """``(sections, pixels)``: :meth:`encode_sections` and what decoding them gives.

        ``pixels`` is the (H, W, C) uint8 image every decoder of these sections
        returns, bit for bit, or None when the codec does not promise it (the
        default). A codec that builds its reconstruction while encoding
        returns it here, so that measuring the result costs no second decode;
        as a :class:`Reconstruction` when it also knows the error exactly.
        """
        extra = {} if prepared is None else {"prepared": prepared}
        return self.encode_sections(image, icc_profile=icc_profile, **extra), None

    def export(self, image: np.ndarray, *, format: str = "imc", icc_profile: bytes | None = None) -> bytes:
        """The bytes of :meth:`compress` (a file of ``format``, one of :attr:`formats`)."""
        return self.compress(image, format=format, icc_profile=icc_profile).data

    @abstractmethod
    def encode_sections(self, image: np.ndarray, *, icc_profile: bytes | None = None) -> list:
        """Encode ``image`` (H, W, 3|4) uint8 into ``[(tag, payload), ...]``.

        Codecs implementing :meth:`prepare` also accept ``prepared=``.
        """

    def encode(self, image: np.ndarray, *, icc_profile: bytes | None = None) -> bytes:
        """Encode ``image`` to the bytes of a complete ``.imc`` file."""
        return self._encode_imc(check_image(image), icc_profile, None)[0]

    def _encode_imc(self, image, icc_profile, prepared) -> tuple:
        h, w, c = image.shape
        if max(h, w) > MAX_SIDE:
            raise InputError(
                f"image of {w}x{h} pixels exceeds the .imc side limit of {MAX_SIDE}; "
                "split or downscale it"
            )
        sections, pixels = self.encode_sections_with_pixels(image, icc_profile=icc_profile, prepared=prepared)
        return pack_container(self.method_id, h, w, c, sections), pixels

    @classmethod
    @abstractmethod
    def decode(cls, container: Container) -> np.ndarray:
        """Decode a parsed container to (H, W, channels) uint8 pixels."""

    @classmethod
    def decode_rows(cls, container: Container, on_rows=None) -> np.ndarray:
        """:meth:`decode`, telling ``on_rows(pixels, stop)`` as rows become final.

        ``pixels`` is the (H, W, channels) uint8 array being decoded into (the
        one returned), ``stop`` a row count: rows ``0 .. stop - 1`` hold their
        final values and are not written again. Calls come from the calling
        thread, with ``stop`` increasing, the last one with H, so that a
        writer can compress the top of the image while the rest is decoded.
        Default: :meth:`decode`, then one call with every row; a codec whose
        decoder makes its output in bands of rows overrides this.
        """
        pixels = cls.decode(container)
        if on_rows is not None:
            on_rows(pixels, pixels.shape[0])
        return pixels

    @classmethod
    def describe(cls, container: Container) -> dict:
        """Method parameters read from the container, without decoding pixels."""
        return {}

    @classmethod
    def explain(cls, container: Container, pixels: np.ndarray) -> dict:
        """What a learner sees beside a decoded file in the report's explorer.

        Returns a dict with ``"facts"``: a list of ``[label, text]`` pairs
        (default: :meth:`describe`'s items), and optionally ``"palette"``: a
        list of ``[hex colour, share of the pixels]``.
        """
        return {"facts": [[k, _text(v)] for k, v in cls.describe(container).items()]}

    def get_params(self) -> dict:
        """The parameters given to ``__init__`` (scikit-learn convention)."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return "/".join(map(str, value))
    return "–" if value is None else str(value)


def register_codec(cls: type[Codec]) -> type[Codec]:
    """Class decorator adding a codec to the registry."""
    if cls.name in _REGISTRY or cls.method_id in _BY_ID:
        raise ValueError(f"codec {cls.name!r} / id {cls.method_id} registered twice")
    _REGISTRY[cls.name] = cls
    _BY_ID[cls.method_id] = cls
    return cls


def available_methods() -> list[str]:
    """Names of the registered methods."""
    _load_builtin()
    return sorted(_REGISTRY)


def get_codec(name: str) -> type[Codec]:
    """The codec class registered as ``name``."""
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(
            f"unknown method {name!r}; choose one of {', '.join(sorted(_REGISTRY))}"
        ) from None


def codec_for_id(method_id: int) -> type[Codec]:
    """The codec class for a method id found in a ``.imc`` header."""
    _load_builtin()
    try:
        return _BY_ID[method_id]
    except KeyError:
        raise CorruptFileError(f"unknown method id {method_id} in .imc header") from None


def _load_builtin() -> None:
    # importing the method packages runs their @register_codec decorators
    from .. import kmeans, pca_patch, pca_rows  # noqa: F401


def compress(image, method: str = "kmeans", *, icc_profile: bytes | None = None, **params) -> bytes:
    """Compress an (H, W, 3|4) uint8 image to the bytes of a ``.imc`` file.

    Examples
    --------
    >>> import imcompress
    >>> img = imcompress.sample_image()
    >>> data = imcompress.compress(img, "kmeans", n_colors=16)
    >>> imcompress.decompress(data).shape
    (512, 512, 3)
    """
    codec = get_codec(method)
    check_params(codec, params)
    return codec(**params).encode(image, icc_profile=icc_profile)


def check_params(codec: type[Codec], params: dict) -> None:
    """Raise :class:`UsageError` naming any of ``params`` that ``codec.__init__`` does not take."""
    import inspect as _inspect

    signature = list(_inspect.signature(codec.__init__).parameters.values())[1:]  # without self
    if any(p.kind is p.VAR_KEYWORD for p in signature):
        return
    accepted = [p.name for p in signature if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [name for name in params if name not in accepted]
    if unknown:
        raise UsageError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for method "
            f"{codec.name!r}; its options are {', '.join(accepted) or '(none)'}"
        )


def decompress(data: bytes, *, max_pixels: int | None = None, on_rows=None) -> np.ndarray:
    """Decode the bytes of a ``.imc`` file to (H, W, 3|4) uint8 pixels.

    ``on_rows``: optional ``on_rows(pixels, stop)``, called as rows
    ``0 .. stop - 1`` of the array being decoded into become final
    (:meth:`Codec.decode_rows`), e.g. :meth:`imcompress.io.PngWriter.rows`
    to write a PNG while decoding.

    Examples
    --------
    >>> import imcompress
    >>> from imcompress.io import PngWriter, png_bytes
    >>> data = imcompress.compress(imcompress.sample_image(), "kmeans", n_colors=8)
    >>> with PngWriter((512, 512, 3)) as png:
    ...     pixels = imcompress.decompress(data, on_rows=png.rows)
    ...     file = png.finish()
    >>> file == png_bytes(pixels)
    True
    """
    container = unpack_container(data, max_pixels=max_pixels)
    expected = (container.height, container.width, container.channels)

    def check(pixels):
        if pixels.shape != expected or pixels.dtype != np.uint8:
            raise CorruptFileError(f"decoded pixels {pixels.shape} do not match header {expected}")
        return pixels

    codec = codec_for_id(container.method_id)
    if on_rows is None:
        return check(codec.decode(container))
    return check(codec.decode_rows(container, lambda pixels, stop: on_rows(check(pixels), stop)))


def inspect(data: bytes, *, max_pixels: int | None = None) -> dict:
    """Describe a ``.imc`` file without decoding its pixel payload."""
    from ..metrics import bits_per_pixel, compression_ratio

    container = unpack_container(data, max_pixels=max_pixels)
    codec = codec_for_id(container.method_id)
    h, w = container.height, container.width
    shape = (h, w, container.channels)
    return {
        "method": codec.name,
        "format_version": container.version,
        "height": h,
        "width": w,
        "channels": container.channels,
        "bytes": container.size,
        "bpp": bits_per_pixel(container.size, shape),
        "ratio": compression_ratio(container.size, shape),
        "params": codec.describe(container),
        "sections": container.section_sizes(),
    }
