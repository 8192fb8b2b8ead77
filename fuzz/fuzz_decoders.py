"""atheris harness for the .imc decoders (opt-in: `make fuzz`, see fuzz/README.md).

Every input is re-sealed (CRC-32 recomputed) before decoding, so libFuzzer's own
byte mutations reach the method decoders instead of dying at the checksum; a
custom mutator adds structure-aware edits (fuzz/imc_fuzz.py: payloads, header
fields, the section table, lengths kept consistent). A finding is any exception
other than CorruptFileError, a decoded array of the wrong shape or dtype, a
libFuzzer timeout (-timeout) or an RSS above -rss_limit_mb.

    python fuzz/fuzz_decoders.py fuzz/corpus -max_total_time=300 -timeout=10 -rss_limit_mb=2048

IMC_FUZZ_MAX_PIXELS (default 2**22) is the decoder's pixel limit: mutants may
claim any dimensions, and a legitimate decode of 100 megapixels is not a bug.
Set NUMBA_DISABLE_JIT=1 to run the numba kernels as Python, so atheris sees
their branches too (about 100x slower per input).
"""

import os
import random
import sys
import types
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

import imcompress  # noqa: E402
import imc_fuzz  # noqa: E402

MAX_PIXELS = int(os.environ.get("IMC_FUZZ_MAX_PIXELS", 1 << 22))


def test_one_input(data: bytes) -> None:
    imc_fuzz.check_decoder(imc_fuzz.reseal(data), max_pixels=MAX_PIXELS)


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if rng.random() < 0.25 or imc_fuzz.split(data) is None:
        return atheris.Mutate(data, max_size)
    out = imc_fuzz.mutate(data, rng.randrange)
    return out if len(out) <= max_size else imc_fuzz.reseal(out[:max_size])


def _our_functions():
    """The plain Python functions and methods of imcompress (numba kernels are not)."""
    for name, module in list(sys.modules.items()):
        if not (name == "imcompress" or name.startswith("imcompress.")):
            continue
        for value in list(vars(module).values()):
            members = vars(value).values() if isinstance(value, type) else [value]
            for member in members:
                func = getattr(member, "__func__", member)  # classmethod, staticmethod
                if isinstance(func, types.FunctionType) and func.__module__ == name:
                    yield func


def _instrument() -> None:
    """Coverage for imcompress' Python code, after its numba kernels are compiled.

    atheris rewrites bytecode, which numba cannot compile: instrumenting at
    import (``instrument_imports``) breaks every ``@njit`` kernel. Decoding the
    seeds first compiles (or loads from cache) the kernels the decoders use;
    then only imcompress' plain functions are rewritten. Under
    NUMBA_DISABLE_JIT=1 the kernels are plain functions and are rewritten too.
    """
    for data in imc_fuzz.seed_files().values():
        imcompress.decompress(data)
    seen = set()
    for func in _our_functions():
        if id(func) not in seen:
            seen.add(id(func))
            atheris.instrument_func(func)
    print(f"INFO: instrumented {len(seen)} imcompress functions", file=sys.stderr)


def main() -> None:
    _instrument()
    atheris.Setup(sys.argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
