"""The ``pca-patch`` codec: a patch transform learned from each image.

Pipeline (encoder; the decoder runs the last steps backwards)::

    RGB -> YCbCr (JPEG matrix) -> chroma 4:2:0 or 4:4:4 (chosen per image)
        -> p x p patches per plane -> DCT domain
        -> PCA of the non-DC part (learned from this image; basis stored
           quantized in the DCT domain, sparse, only the components used)
           or, opt-in (basis="classified"), a class per luma block: the DCT or
           one of a few KLTs learned per class (class map and bases stored)
        -> one uniform step per plane, deadzone rounding
        -> context-adaptive binary range coding (imcompress.entropy)

Sections: ``PPAR`` (fixed-size parameters) and ``PDAT`` (one range-coded
stream: the bases then the coefficients). Layout in docs/FORMAT.md.

Modules, by job: ``_transform`` (colour, resampling, patches, DCT, basis
learning), ``_kernels`` (synthesis), ``_quantize`` (steps, Lagrangian),
``_rdoq`` (rate-distortion optimised levels), ``_coder`` (coefficient and
basis coding), ``_deblock`` (filter), ``_params`` (the PPAR section),
``_models`` (per-plane encoder models), ``_encoder`` (the search),
``_decoder``, ``_jit`` (how the kernels are compiled); this module is the codec plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._errors import UsageError
from ..codecs import Codec, register_codec
from ..codecs._base import Option, Slider
from ._quantize import quality_to_step

if TYPE_CHECKING:
    from ._params import IntraParams, Params

# The encoder, the decoders and the PPAR parser are imported where they are
# used: listing the codec's options (every ``imcompress compress``, whatever the
# method) then costs no numba kernel definitions (about 0.1 s of imports).

__all__ = ["PCAPatchCodec", "quality_to_step"]

_PATCH_SIZES = (4, 8, 16)


def _check_patch(patch_size):
    if patch_size in ("auto", None):
        return "auto"
    try:
        p = int(patch_size)
    except (TypeError, ValueError):
        p = -1
    if p not in _PATCH_SIZES:
        raise UsageError(f"patch_size={patch_size!r} should be 4, 8, 16 or 'auto'")
    return p


@register_codec
class PCAPatchCodec(Codec):
    """Transform coding with intra prediction (bitstream 2) or a per-image learned patch basis (bitstream 1).

    Bitstream 2 (the default) predicts each block from its decoded
    neighbours (planar, DC, 33 angles, chroma from luma), chooses block
    sizes 32 .. 4 and modes by rate-distortion cost, and codes the DCT of
    the residual; bitstream 1 codes fixed p x p patches on the DCT or a
    basis learned from the image (the project's original patch-PCA codec).
    Both decode forever; docs/FORMAT.md specifies them.

    Parameters
    ----------
    quality : float, default=50
        0 (smallest) .. 100 (best); file size and PSNR grow with it.
    bpp : float, optional
        Target bits per pixel instead of ``quality``: the largest file not
        above ``bpp`` (bisection on the quantizer step).
    patch_size : {4, 8, 16, "auto"}, default="auto"
        Side of the square patches (luma and chroma planes); ``"auto"`` is 8,
        the best size of the patch-size study (docs/pca-patch.md).
    chroma : {"auto", "420", "444"}, default="auto"
        Chroma subsampling; ``"auto"`` keeps the cheaper at equal quality.
    basis : {"auto", "pca", "dct", "classified"}, default="auto"
        ``"pca"``: learn the basis from each plane and store it; ``"dct"``:
        the fixed DCT (nothing stored); ``"classified"``: luma blocks are
        classified, each class coded with the DCT or a KLT learned for it
        (class per block and learned bases stored; chroma: DCT);
        ``"auto"``: for luma, the one with the lower rate-distortion cost,
        basis bytes included (chroma: DCT).
    bitstream : {None, 1, 2}, default=None
        None: 2, or 1 when ``patch_size`` or ``basis`` is given (they
        belong to bitstream 1).
    speed : int, default=8
        Encoder effort of bitstream 2, 0 (slowest, best) .. 9 (fastest).
        0..5: how many prediction modes are tried in full (8 .. 3) and,
        from 4, no further split of blocks that code no level; 6..9 also
        rank the modes coarse to fine, stop the partition search early on
        cheap blocks and (9) use no 4 x 4 blocks. The default, 8, costs
        about 1.7 % BD-rate against speed 5 on Kodak (the default until
        2026-12-02) and encodes a 12 MP photo in under 6 s; docs/pca-patch.md
        gives each level's time and rate-distortion cost.

    Examples
    --------
    >>> import imcompress
    >>> img = imcompress.sample_image()
    >>> data = imcompress.compress(img, "pca-patch", quality=50)
    >>> imcompress.decompress(data).shape
    (512, 512, 3)
    """

    name = "pca-patch"
    method_id = 3
    rate_parameter = "quality"
    label = "patch PCA"
    rate_label = "quality"
    rate_ladder = (0, 50)
    rate_continuous = True
    rate_span = (6, 72)  # about 0.08..4 bpp on photos
    slider = Slider("quality", (0, 10, 20, 30, 40, 50, 60, 70, 80, 90), "quality")
    options = (
        Option("quality", ("-q", "--quality"), type="float", metavar="0..100",
               help="quality 0..100 (size and PSNR grow with it)", default=50),
        Option("bpp", ("--bpp",), type="float", metavar="X",
               help="target bits per pixel (largest file not above X)"),
        Option("patch_size", ("--patch-size",), type="str", metavar="4|8|16|auto",
               help="patch side in pixels", default="auto"),
        Option("chroma", ("--chroma",), type="str", metavar="auto|420|444",
               help="chroma subsampling", default="auto"),
        Option("bitstream", ("--bitstream",), type="int", metavar="1|2",
               help="2: intra prediction and adaptive blocks (default); 1: the patch transform coder "
                    "(default when --patch-size is given)", default=2),
        Option("speed", ("--speed",), type="int", metavar="0..9",
               help="encoder effort, 0 slowest and best (bitstream 2)", default=8),
    )

    def __init__(self, *, quality=50, bpp=None, patch_size="auto", chroma="auto", basis="auto", bitstream=None,
                 speed=8):
        self.quality = quality
        self.bpp = bpp
        self.patch_size = patch_size
        self.chroma = chroma
        self.basis = basis
        self.bitstream = bitstream
        self.speed = speed

    def rate_candidates(self, image):
        return [i / 2 for i in range(201)]  # quality in half steps

    def with_rate(self, value):
        params = self.get_params()
        params["quality"] = value
        params["bpp"] = None
        return type(self)(**params)

    # -- parameter validation --------------------------------------------
    def _validate(self):
        q = self.quality
        if not isinstance(q, (int, float)) or isinstance(q, bool) or not (0 <= q <= 100):
            raise UsageError(f"quality={q!r} should be a number in 0..100")
        if self.bpp is not None:
            b = self.bpp
            if not isinstance(b, (int, float)) or isinstance(b, bool) or not (0 < b <= 24):
                raise UsageError(f"bpp={b!r} should be a number in (0, 24]")
        patch = _check_patch(self.patch_size)
        if self.chroma not in ("auto", "420", "444", 420, 444):
            raise UsageError(f"chroma={self.chroma!r} should be 'auto', '420' or '444'")
        if self.basis not in ("auto", "pca", "dct", "classified"):
            raise UsageError(f"basis={self.basis!r} should be 'auto', 'pca', 'dct' or 'classified'")
        if self.bitstream not in (None, 1, 2) or isinstance(self.bitstream, bool):
            raise UsageError(f"bitstream={self.bitstream!r} should be 1, 2 or None")
        v1_only = patch != "auto" or self.basis != "auto"
        if self.bitstream == 2 and v1_only:
            raise UsageError(f"patch_size={self.patch_size!r} and basis={self.basis!r} apply to bitstream=1 only; "
                             "bitstream 2 chooses its block sizes itself")
        if not isinstance(self.speed, int) or isinstance(self.speed, bool) or not 0 <= self.speed <= 9:
            raise UsageError(f"speed={self.speed!r} should be an integer in 0..9")
        bitstream = self.bitstream or (1 if v1_only else 2)
        return patch, str(self.chroma), bitstream

    # -- encoder -------------------------------------------------------------
    def encode_sections(self, image, *, icc_profile=None):
        return self._encode(image, icc_profile, pixels=False)[0]

    def encode_sections_with_pixels(self, image, *, icc_profile=None, prepared=None):
        # bitstream 2 at a quality: the search's own reconstructions, which the
        # decoder rebuilds integer for integer (tests/test_perf_guards.py checks),
        # with their exact error (the summary line then makes no pass of its own)
        return self._encode(image, icc_profile, pixels=True)

    def _encode(self, image, icc_profile, *, pixels):
        patch, chroma, bitstream = self._validate()
        decoded = None
        # small matrices only: OpenBLAS threads cost far more than they save
        # (a 63x63 eigh takes 80 ms with 2 busy threads, 0.4 ms with one)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            if bitstream == 2:
                from ._intra_codec import IntraEncoder

                enc = IntraEncoder(image, chroma=chroma, speed=self.speed)
            else:
                from ._encoder import Encoder

                enc = Encoder(image, patch=patch, chroma=chroma, basis=self.basis)
            if self.bpp is not None:
                budget = int(self.bpp * image.shape[0] * image.shape[1] / 8.0)
                if icc_profile:
                    budget -= len(icc_profile) + 8  # the profile's section counts too
                sections = enc.fit_bytes(budget)
            elif bitstream == 2:
                best = enc.encode_full(quality_to_step(self.quality))
                sections = best.sections
                if pixels:
                    decoded = best.reconstruction(image)
            else:
                sections = enc.encode(quality_to_step(self.quality))[0]
        if icc_profile:
            sections = sections + [(b"ICCP", bytes(icc_profile))]
        return sections, decoded

    # -- decoder -------------------------------------------------------------
    @classmethod
    def _params(cls, container) -> Params | IntraParams:
        from ._params import parse_params

        return parse_params(container.section(b"PPAR"), container.channels)

    @classmethod
    def describe(cls, container):
        from ._params import IntraParams

        prm = cls._params(container)
        if isinstance(prm, IntraParams):
            return {
                "bitstream": 2,
                "chroma": "4:2:0" if prm.subsample else "4:4:4",
                "step": round(prm.step, 4),
                "chroma_step": round(prm.chroma_step, 4),
                "block_sizes": [[1 << pl.log2min, 1 << pl.log2max] for pl in prm.planes],
                "basis": ["dct"] * len(prm.planes),  # a DCT per block size after intra prediction
                "deblock": [pl.deblock for pl in prm.planes],
            }
        return {
            "bitstream": 1,
            "chroma": "4:2:0" if prm.subsample else "4:4:4",
            "step": round(prm.step, 4),
            "chroma_step": round(prm.chroma_step, 4),
            "patch_sizes": [pl.patch for pl in prm.planes],
            "basis": [pl.basis_name for pl in prm.planes],
            "components": [pl.components for pl in prm.planes],
            "deblock": [pl.deblock for pl in prm.planes],
        }

    @classmethod
    def decode(cls, container):
        return cls.decode_rows(container)

    @classmethod
    def decode_rows(cls, container, on_rows=None):
        from ._params import IntraParams

        prm = cls._params(container)
        shape = (container.height, container.width, container.channels)
        if isinstance(prm, IntraParams):  # made band by band: rows are told as each band is done
            from ._intra_decoder import decode_intra

            return decode_intra(container.section(b"PDAT"), prm, shape, on_rows=on_rows)
        from ._decoder import decode

        pixels = decode(container.section(b"PDAT"), prm, shape)
        if on_rows is not None:
            on_rows(pixels, shape[0])
        return pixels
