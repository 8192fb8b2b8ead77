"""python -m tools.spec_decoder FILE.imc [-o OUT.npy|OUT.pam]: decode, print shape and pixel SHA-256.

Exit codes: 0 decoded, 3 refused (damaged or newer version; one line on stderr), 2 usage.
"""

import argparse
import hashlib
import sys

import numpy as np

from .spec_decoder import SpecDecodeError, decode


def write_pam(path: str, pixels: np.ndarray) -> None:
    h, w, c = pixels.shape
    kind = "RGB" if c == 3 else "RGB_ALPHA"
    header = f"P7\nWIDTH {w}\nHEIGHT {h}\nDEPTH {c}\nMAXVAL 255\nTUPLTYPE {kind}\nENDHDR\n"
    with open(path, "wb") as f:
        f.write(header.encode("ascii") + pixels.tobytes())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.spec_decoder", description=__doc__.splitlines()[0])
    parser.add_argument("file", help="an .imc file")
    parser.add_argument("-o", "--output", help="write the pixels: .npy (NumPy) or .pam (Netpbm)")
    args = parser.parse_args(argv)
    try:
        with open(args.file, "rb") as f:
            data = f.read()
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        pixels = decode(data)
    except SpecDecodeError as exc:
        print(f"error: {args.file}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    if args.output:
        if args.output.endswith(".npy"):
            np.save(args.output, pixels)
        else:
            write_pam(args.output, pixels)
    h, w, c = pixels.shape
    print(f"{h}x{w}x{c} {hashlib.sha256(pixels.tobytes()).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
