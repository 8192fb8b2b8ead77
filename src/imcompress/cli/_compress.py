"""The ``compress``, ``decompress`` and ``info`` commands.

Method options are not written here: each codec declares them as data
(:class:`imcompress.codecs.Option`) and :func:`_method_options` turns them into
click options, so a new method brings its options with it.
"""

from __future__ import annotations

import io
import json
import math
import sys
import time
from pathlib import Path

import click
import numpy as np

from .._errors import CorruptFileError, ImcompressError, InputError, SkippedLargerError, UsageError, WriteError
from .._json import json_safe
from ..codecs import available_methods, codec_for_id, compress_to_target, decompress, get_codec, inspect
from ..format import unpack_container
from ..io import PngWriter, atomic_write, check_writable, ppm_bytes, read_image
from ..io._filtering import filters_aot
from ..io._write import write_stdout
from ..metrics import mse, psnr_from_mse, ssim
from ..plugins import PILLOW_FORMAT
from ._main import cli, echo_error, flag_names, short_help
from ._startup import set_up_numba

__all__ = ["compress_cmd", "decompress_cmd", "info_cmd", "default_suffix"]

_GLOBAL_SHORT = {"-o", "-f", "-q", "-v", "-m", "-h"}
_CLICK_TYPES = {"str": str, "int": int, "float": float}
#: Extensions that name an image format we do not write: an error, not the default format.
_OTHER_IMAGE_EXTENSIONS = {"jpg", "jpeg", "jpe", "webp", "gif", "tif", "tiff", "bmp", "avif", "heic", "heif",
                           "jxl", "jp2", "j2k", "ppm", "pgm", "pbm", "pnm", "ico", "tga", "qoi", "apng"}


def default_suffix(method: str, fmt: str) -> str:
    """Suffix replacing the input's extension: ``photo.jpg`` -> ``photo.kmeans.imc``."""
    return f".{method}.{fmt}"


def _dest(long_flag: str) -> str:
    return "m_" + long_flag.lstrip("-").replace("-", "_")


def _collect_options():
    """{long flag: (Option, {method: Option})} over every registered codec.

    A flag shared by methods with different types (``--quality`` is MIN-MAX
    text for kmeans, a number for pca-patch) becomes a text option, converted
    for the chosen method by :func:`_convert`.
    """
    import dataclasses

    merged: dict = {}
    for method in available_methods():
        for opt in get_codec(method).options:
            key = opt.long_flag
            if key in merged:
                first, per_method = merged[key]
                per_method[method] = opt
                if first.type != opt.type:
                    if "flag" in (first.type, opt.type):  # pragma: no cover - a codec bug
                        raise TypeError(f"option {key} is a flag for one method and takes a value for another")
                    merged[key] = (dataclasses.replace(first, type="str"), per_method)
            else:
                merged[key] = (opt, {method: opt})
    return merged


def _convert(key: str, value, opt):
    """Convert a CLI value to the type the chosen method declared."""
    if opt.type in ("str", "flag") or not isinstance(value, str):
        return value
    try:
        return _CLICK_TYPES[opt.type](value)
    except ValueError:
        raise UsageError(f"{key} {value!r} should be a number for this method") from None


_METHOD_OPTIONS = _collect_options()  # imports the codecs, not their numba kernels


def _method_options(func):
    for key in sorted(_METHOD_OPTIONS, reverse=True):
        opt, per_method = _METHOD_OPTIONS[key]
        flags = [f for f in opt.flags if f.startswith("--") or f not in _GLOBAL_SHORT]
        if len(per_method) == 1:
            help_text = f"[{next(iter(per_method))}] {opt.help}"
        else:  # a flag shared by methods: each says what it means to it
            help_text = "; ".join(f"[{m}] {o.help}" for m, o in sorted(per_method.items()))
        if opt.default is not None:
            help_text += f" (default {opt.default})"
        kwargs = {"default": None, "help": help_text}
        if opt.metavar:
            kwargs["metavar"] = opt.metavar
        if opt.type == "flag":
            kwargs.update(is_flag=True, default=None)
        else:
            kwargs["type"] = _CLICK_TYPES[opt.type]
            if opt.flag_value is not None:
                kwargs.update(is_flag=False, flag_value=opt.flag_value)
        func = click.option(*flags, _dest(key), **kwargs)(func)
    return func


def _codec_from_cli(method: str, values: dict):
    """Build the codec from the method options the user gave."""
    given = {key: values[_dest(key)] for key in _METHOD_OPTIONS if values.get(_dest(key)) is not None}
    kwargs = {}
    for key, value in given.items():
        _, per_method = _METHOD_OPTIONS[key]
        if method not in per_method:
            owners = ", ".join(sorted(per_method))
            raise UsageError(f"{key} is an option of --method {owners}, not {method}")
        kwargs[per_method[method].name] = _convert(key, value, per_method[method])
    return get_codec(method).from_options(**kwargs)


def _format_of(path: str, explicit: str | None, formats, default: str) -> str:
    ext = Path(path).suffix.lower().lstrip(".") if path != "-" else ""
    if path != "-" and Path(path).is_dir():
        raise WriteError(f"{path}: is a folder; give a file name (or use --ext to write next to each input)")
    if explicit and ext in ("imc", "png") and ext != explicit:
        raise UsageError(f"{path}: the extension .{ext} contradicts --format {explicit}; make them agree")
    if explicit:
        fmt = explicit
    elif ext in ("imc", "png"):
        fmt = ext
    elif ext in _OTHER_IMAGE_EXTENSIONS:
        raise UsageError(
            f"{path}: cannot tell the output format from the extension {Path(path).suffix!r}; "
            "use .imc or .png, or --format"
        )
    else:  # stdout, or a name whose extension does not tell: the method's default
        fmt = default
    if fmt not in formats:
        raise UsageError(f"this method writes {' or '.join(formats)} files, not {fmt}")
    return fmt


def _output_for(src: str, output, suffix, method, fmt_opt, codec):
    formats, default = codec.formats, codec.default_format
    if output is not None:
        return output, _format_of(output, fmt_opt, formats, default)
    if src == "-":
        return "-", _format_of("-", fmt_opt, formats, default)
    if suffix is None:
        suffix = default_suffix(method, fmt_opt or default)
    path = Path(src)
    out = str(path.with_name(path.stem + suffix))
    return out, _format_of(out, fmt_opt, formats, default)


#: Keyword arguments of the library that the compress command sets from its own flags.
_GLOBAL_FLAGS = {
    "max_pixels": "--max-pixels",
    "target_psnr": "--target-psnr",
    "max_bytes": "--max-bytes",
    "best_effort": "--best-effort",
    "method": "-m/--method",
    "force": "-f/--force",
}


def _flags_for(method: str) -> dict:
    """{keyword: flag} for the global options and those of ``method``."""
    flags = dict(_GLOBAL_FLAGS)
    for opt in get_codec(method).options:
        flags[opt.name] = "/".join(opt.flags)
    return flags


def _read_input(src: str, max_pixels=None):
    if src == "-":
        return read_image(sys.stdin.buffer, alpha="keep", max_pixels=max_pixels)
    return read_image(src, alpha="keep", max_pixels=max_pixels)


def _line(text: str, *, to_stderr: bool) -> None:
    if to_stderr:
        click.echo(text, err=True)
    else:  # a closed pipe (| head) is a write error, not a traceback or a silent exit 1
        write_stdout(text + "\n")


def _reading(src: str, max_pixels):
    """Start reading ``src`` in a thread; returns a callable that waits for the image (or its error).

    Decoding runs in C without the GIL, so a large PNG decodes while numba sets
    itself up on the other core (12 MP: 0.5 s of decoding beside 0.3 s of set-up).
    """
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1)
    future = pool.submit(_read_input, src, max_pixels)
    pool.shutdown(wait=False)
    return future.result


def _compress_one(src, out, fmt, codec, opts, image=None):
    if out != "-":
        check_writable(out, force=opts["force"])
    image = _read_input(src, opts["max_pixels"]) if image is None else image()
    pixels = image.pixels
    icc = None if opts["strip"] else image.icc_profile
    start = time.perf_counter()

    measure = opts["json"] or not opts["quiet"]
    searching = opts["target_psnr"] is not None or opts["max_bytes"] is not None

    def show(trial):  # -v: every candidate of a target search
        if trial.value is None:
            return
        _line(f"  {codec.rate_parameter}={trial.value}: {trial.bytes} bytes, PSNR {trial.psnr:.2f} dB",
              to_stderr=True)

    # without a target the error is measured once, below, not also in compress_to_target
    result = compress_to_target(
        pixels, codec, target_psnr=opts["target_psnr"], max_bytes=opts["max_bytes"],
        best_effort=opts["best_effort"], format=fmt, icc_profile=icc, measure=measure and searching,
        on_trial=show if opts["verbose"] else None,
    )
    seconds = time.perf_counter() - start
    compressed, decoded, met = result.compressed, result.decoded, result.met
    known = compressed.mse  # the codec's exact error, when it has it without a pass over the pixels
    if measure and decoded is None and (known is None or opts["ssim"]):
        # a codec without its own reconstruction: decode the file
        from ..codecs._targets import _decode_file

        decoded = _decode_file(compressed.data)
    data = compressed.data
    if image.file_size is not None and len(data) > image.file_size:
        if opts["skip_if_larger"]:
            raise SkippedLargerError(
                f"{image.source}: result ({len(data)} bytes) would be larger than the input "
                f"({image.file_size} bytes); nothing written (--skip-if-larger)"
            )
        if not opts["quiet"]:
            _line(
                f"imcompress: warning: {image.source}: output ({len(data)} bytes) is larger than "
                f"the input file ({image.file_size} bytes)",
                to_stderr=True,
            )
    if not met and not opts["quiet"]:
        _line(f"imcompress: warning: {image.source}: target not reached (--best-effort)", to_stderr=True)
    atomic_write(out, data, force=opts["force"])
    record = {
        "input": image.source if src != "-" else "-",
        "output": out,
        "method": compressed.method,
        "format": compressed.format,
        "params": compressed.params,
        "bytes": compressed.n_bytes,
        "bpp": compressed.bpp,
        "ratio": compressed.ratio,
        "seconds": seconds,
    }
    if measure:
        # else one float64 pass over the pixels, in chunks; SSIM only when
        # asked for (it costs more than most encodes)
        err = known if known is not None else mse(pixels, decoded)
        record.update(rmse=math.sqrt(err), psnr=psnr_from_mse(err))
        if opts["ssim"]:
            record["ssim"] = ssim(pixels, decoded)
        record["metrics"] = [m for m in ("bytes", "bpp", "ratio", "rmse", "psnr", "ssim") if m in record]
    if opts["json"]:
        _line(json.dumps(json_safe(record)), to_stderr=out == "-")
    elif not opts["quiet"]:
        _line(_summary(record), to_stderr=out == "-")


def _summary(r) -> str:
    params = ", ".join(f"{k}={v}" for k, v in r["params"].items() if v not in (None, False))
    p = "inf" if math.isinf(r["psnr"]) else f"{r['psnr']:.2f}"
    ssim_text = f"SSIM {r['ssim']:.4f}, " if "ssim" in r else ""
    return (
        f"{r['input']} -> {r['output']}: {r['method']} ({params}), {r['bytes']} bytes, "
        f"{r['bpp']:.3f} bpp, ratio {r['ratio']:.1f}, PSNR {p} dB, {ssim_text}"
        f"{r['seconds']:.2f} s"
    )


@cli.command("compress", short_help=short_help("compress"))
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("-m", "--method", default="kmeans", show_default=True,
              type=click.Choice(available_methods()), help="Compression method.")
@click.option("-o", "--output", help="Output file (one input only); '-' writes stdout.")
@click.option("--ext", "suffix", metavar="SUFFIX",
              help="Suffix replacing each input's extension (default .METHOD.png for kmeans, else .METHOD.imc; "
                   "or the --format given).")
@click.option("--format", "fmt", type=click.Choice(["imc", "png"]),
              help="Output format when the name does not tell (default: png for kmeans, imc for the others).")
@click.option("--target-psnr", type=float, metavar="DB", help="Smallest file reaching this PSNR.")
@click.option("--max-bytes", type=int, metavar="N", help="Best quality within N bytes.")
@click.option("--best-effort", is_flag=True, help="Write the closest result when a target is not reachable.")
@click.option("--skip-if-larger", is_flag=True, help="Do not write results larger than the input (exit 98).")
@click.option("--strip", is_flag=True, help="Drop the ICC colour profile.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per input instead of the summary line (its 'metrics' lists what it holds).")
@click.option("--ssim", "with_ssim", is_flag=True,
              help="Also measure SSIM (scikit-image; costs more than the encode on large images).")
@click.option("-q", "--quiet", is_flag=True, help="No summary line.")
@click.option("-v", "--verbose", is_flag=True, help="Show every candidate of a target search.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None, metavar="N",
              help="Refuse input images with more pixels (default 100 million or IMCOMPRESS_MAX_PIXELS).")
@_method_options
def compress_cmd(inputs, method, output, suffix, fmt, target_psnr, max_bytes, best_effort,
                 skip_if_larger, strip, force, as_json, with_ssim, quiet, verbose, max_pixels, **method_values):
    """Compress images: kmeans writes palette PNGs (.imc by extension or --format imc), the others .imc files.

    Several inputs are written next to themselves as INPUT-without-extension +
    SUFFIX. '-' as INPUT reads stdin. Method options are listed with the
    methods they apply to in brackets.
    """
    with flag_names(_flags_for(method)):
        _compress_all(inputs, method, output, suffix, fmt, target_psnr, max_bytes, best_effort,
                      skip_if_larger, strip, force, as_json, quiet, verbose, max_pixels, method_values,
                      with_ssim)


def _compress_all(inputs, method, output, suffix, fmt, target_psnr, max_bytes, best_effort,
                  skip_if_larger, strip, force, as_json, quiet, verbose, max_pixels, method_values,
                  with_ssim=False):
    if output is not None and len(inputs) > 1:
        raise UsageError(f"-o names one output but {len(inputs)} inputs were given; use --ext")
    if output is not None and suffix is not None:
        raise UsageError("give -o or --ext, not both")
    if inputs.count("-") > 1:
        raise UsageError("stdin ('-') can be read only once")
    if target_psnr is not None and not 0 < target_psnr < 200:
        raise UsageError(f"--target-psnr {target_psnr} should be in (0, 200) dB")
    if max_bytes is not None and max_bytes < 1:
        raise UsageError(f"--max-bytes {max_bytes} should be >= 1")
    codec = _codec_from_cli(method, method_values)
    if (target_psnr is not None or max_bytes is not None) and codec.rate_parameter is None:
        raise UsageError(f"method {method} has no rate parameter for --target-psnr/--max-bytes")
    opts = {
        "force": force, "strip": strip, "target_psnr": target_psnr, "max_bytes": max_bytes,
        "best_effort": best_effort, "skip_if_larger": skip_if_larger, "json": as_json,
        "quiet": quiet, "verbose": verbose, "max_pixels": max_pixels, "ssim": with_ssim,
    }
    plans = [(src, *_output_for(src, output, suffix, method, fmt, codec)) for src in inputs]
    outs = [o for _, o, _ in plans if o != "-"]
    if len(set(outs)) != len(outs) or sum(o == "-" for _, o, _ in plans) > 1:
        raise UsageError("two inputs would write the same output; use distinct names")
    if len(plans) == 1:
        src, out, f = plans[0]
        if out != "-":
            check_writable(out, force=force)  # before any work
        image = _reading(src, max_pixels)
        if codec.needs_jit(f):
            set_up_numba()  # beside the reading
        _compress_one(src, out, f, codec, opts, image)
        return
    if any(codec.needs_jit(f) for _, _, f in plans):
        set_up_numba()
    # every input is tried; each failure is reported as it happens, and the
    # last one is raised so that main() prints it and exits with the code of
    # the first failure
    first_code = None
    pending = None
    for src, out, f in plans:
        try:
            _compress_one(src, out, f, codec, opts)
        except WriteError as exc:
            if out == "-" or "broken pipe" in str(exc):
                raise  # stdout is gone: nothing more can be reported
            pending, first_code = _defer(pending, exc, first_code)
        except ImcompressError as exc:
            pending, first_code = _defer(pending, exc, first_code)
    if pending is not None:
        pending.exit_code = first_code
        raise pending


def _defer(pending, exc, first_code):
    if pending is not None:
        echo_error(str(pending))
    return exc, first_code if first_code is not None else int(exc.exit_code)


def _read_compressed(src: str) -> bytes:
    if src == "-":
        data = sys.stdin.buffer.read()
        if not data:
            raise InputError("<stdin>: nothing to read (empty input); pipe an .imc file into it")
        return data
    path = Path(src)
    if path.is_dir():
        raise InputError(f"{src}: is a folder, not an .imc file")
    if not path.is_file():
        raise InputError(f"{src}: no such file; check the path")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{src}: cannot be read ({exc.strerror or exc})") from None
    if not data:
        raise CorruptFileError(f"{src}: file is empty; give an .imc file written by imcompress compress")
    return data


def _named(src: str, func, *args, **kwargs):
    """Run ``func``; a corrupt-file error names the file it is about."""
    try:
        return func(*args, **kwargs)
    except CorruptFileError as exc:
        name = "<stdin>" if src == "-" else src
        exc.args = (f"{name}: {exc}",)
        raise


#: Extensions of the formats ``decompress`` writes itself (PNG; PPM of RGB), with Pillow's names for them.
_OWN_WRITERS = {".png": "PNG", ".ppm": "PPM"}


def _image_bytes(pixels: np.ndarray, fmt: str, icc: bytes | None) -> bytes:
    from PIL import Image

    if fmt == "PPM" and pixels.shape[2] == 3:  # Pillow's bytes, one copy instead of three
        return ppm_bytes(pixels)
    mode = "RGBA" if pixels.shape[2] == 4 else "RGB"
    img = Image.fromarray(np.ascontiguousarray(pixels), mode=mode)
    buf = io.BytesIO()
    kwargs = {"icc_profile": icc} if icc else {}
    try:
        img.save(buf, format=fmt, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"cannot write {mode} pixels as {fmt} ({exc}); choose .png") from None
    return buf.getvalue()


@cli.command("decompress", short_help=short_help("decompress"))
@click.argument("source", metavar="INPUT")
@click.option("-o", "--output", help="Output image; the format follows the extension ('-' = PNG on stdout).")
@click.option("--format", "fmt", help="Pillow format name when the extension does not tell (e.g. PNG).")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output.")
@click.option("--strip", is_flag=True, help="Do not write the ICC colour profile.")
@click.option("-q", "--quiet", is_flag=True, help="No summary line.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None, metavar="N",
              help="Refuse files whose header declares more pixels (default 100 million or IMCOMPRESS_MAX_PIXELS).")
def decompress_cmd(source, output, fmt, force, strip, quiet, max_pixels):
    """Decode an .imc file to any image format Pillow writes (by extension)."""
    from PIL import Image

    if output is None:
        output = "-" if source == "-" else str(Path(source).with_suffix(".png"))
    if output != "-" and Path(output).is_dir():
        raise WriteError(f"{output}: is a folder; give a file name such as {Path(output) / 'image.png'}")
    if fmt is not None:
        Image.init()
        known = {name.upper(): name for name in Image.SAVE}
        if fmt.upper() not in known:
            raise UsageError(f"--format {fmt!r} is not a format Pillow writes; e.g. PNG, WEBP, TIFF")
        fmt = known[fmt.upper()]
    else:
        if output == "-":
            fmt = "PNG"
        else:
            ext = Path(output).suffix.lower()
            # the formats written here without Pillow (no need to import its ~40 plugins to name them)
            fmt = _OWN_WRITERS.get(ext) or Image.registered_extensions().get(ext)
            if fmt is None:
                raise UsageError(f"{output}: unknown image extension {ext!r}; use .png, .webp, .tif, ...")
    if fmt == PILLOW_FORMAT:  # Pillow knows .imc through imcompress.plugins: never re-encode silently
        raise UsageError(f"{output}: decompress writes pixel formats such as PNG, not .imc; "
                         "use 'imcompress compress' to re-encode")
    if output != "-":
        check_writable(output, force=force)
    data = _read_compressed(source)
    with flag_names({"max_pixels": "--max-pixels"}):
        container = _named(source, unpack_container, data, max_pixels=max_pixels)
        # PNG output filters its rows in a numba kernel (imcompress.io.PngWriter): on the JIT
        # only where its ahead-of-time build is not there (or numba already is)
        decoder = _named(source, codec_for_id, container.method_id)
        if decoder.decode_needs_jit() or (fmt == "PNG" and not filters_aot()):
            set_up_numba()
        icc = None if strip else container.section(b"ICCP", required=False)
        if fmt == "PNG":
            # Pillow's default level and filters, zlib-ng's DEFLATE on every core, the rows
            # filtered and compressed while the decoder makes the ones below (same bytes as png_bytes)
            shape = (container.height, container.width, container.channels)
            with PngWriter(shape, icc_profile=icc, level=6) as png:
                pixels = _named(source, decompress, data, max_pixels=max_pixels, on_rows=png.rows)
                out = png.finish()
        else:
            pixels = _named(source, decompress, data, max_pixels=max_pixels)
            out = _image_bytes(pixels, fmt, icc)
    atomic_write(output, out, force=force)
    if not quiet:
        h, w, c = pixels.shape
        _line(f"{source} -> {output}: {w}x{h}, {c} channels, {len(out)} bytes ({fmt})", to_stderr=output == "-")


@cli.command("info", short_help=short_help("info"))
@click.argument("source", metavar="FILE")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None, metavar="N",
              help="Refuse files whose header declares more pixels (default 100 million or IMCOMPRESS_MAX_PIXELS).")
def info_cmd(source, as_json, max_pixels):
    """Describe an .imc file (method, size, parameters, bytes, bpp) without decoding its pixels."""
    data = _read_compressed(source)
    with flag_names({"max_pixels": "--max-pixels"}):
        meta = _named(source, inspect, data, max_pixels=max_pixels)
    meta = {"file": source, **meta}
    if as_json:
        _line(json.dumps(json_safe(meta)), to_stderr=False)
        return
    lines = [
        f"{source}: {meta['method']} .imc v{meta['format_version']}, "
        f"{meta['width']}x{meta['height']}, {meta['channels']} channels",
        f"  {meta['bytes']} bytes, {meta['bpp']:.3f} bpp, ratio {meta['ratio']:.1f}",
    ]
    lines += [f"  {key}: {value}" for key, value in meta["params"].items()]
    lines.append("  sections: " + ", ".join(f"{k} {v} B" for k, v in meta["sections"].items()))
    _line("\n".join(lines), to_stderr=False)
