"""Mutated .imc files that reach the method decoders (CRC re-sealed): pixels of the header's
shape or one CorruptFileError, never another exception, a hang or a huge allocation.

The mutator is fuzz/imc_fuzz.py, shared with the atheris harness (`make fuzz`).
"""

import random
import resource
import struct
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import imcompress
from imcompress import CorruptFileError
from imcompress.format import unpack_container

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))
import imc_fuzz  # noqa: E402

#: Mutants may claim other dimensions; the pixel limit keeps a legitimate decode small.
MAX_PIXELS = 1 << 20
#: Per decode: CPU seconds, and bytes allocated beyond the decoded image's own size.
CPU_BUDGET = 5.0
ALLOC_SLACK = 64 << 20
ALLOC_PER_VALUE = 48  # float64 planes and int32 levels of the decoder, per output value


@pytest.fixture(scope="module")
def seeds():
    conformance = Path(__file__).resolve().parent / "conformance"
    files = {**imc_fuzz.seed_files(), **imc_fuzz.conformance_files(conformance, max_bytes=6000)}
    for data in files.values():  # load the cached numba kernels once, outside the budgets
        imcompress.decompress(data)
    return files


def test_reseal_and_split_follow_the_format(seeds):
    data = seeds["kmeans-rgb"]
    assert imc_fuzz.reseal(data) == data
    damaged = data[:-4] + b"\0\0\0\0"
    with pytest.raises(CorruptFileError, match="checksum"):
        imcompress.decompress(damaged)
    assert imc_fuzz.reseal(damaged) == data
    head, sections = imc_fuzz.split(data)
    assert imc_fuzz.join(head, sections) == data
    parsed = unpack_container(data)
    assert [(t, bytes(p)) for t, p in sections] == parsed.sections
    assert imc_fuzz.header_shape(data) == (parsed.height, parsed.width, parsed.channels)
    assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])


def test_seed_files_cover_every_method_rgb_and_rgba(seeds):
    kinds = {(imcompress.inspect(d)["method"], imcompress.inspect(d)["channels"]) for d in seeds.values()}
    assert kinds == {(m, c) for m in imcompress.available_methods() for c in (3, 4)}


def test_mutants_reach_the_method_decoders(seeds):
    """Most mutants pass the container checks, and the decoders both accept and refuse some."""
    rng = random.Random(0)
    names = sorted(seeds)
    passed, decoded, refused_by_codec = 0, 0, 0
    n = 220
    for i in range(n):
        blob = imc_fuzz.mutate(seeds[names[i % len(names)]], rng.randrange)
        try:
            unpack_container(blob, max_pixels=MAX_PIXELS)
        except CorruptFileError:
            continue
        passed += 1
        if imc_fuzz.check_decoder(blob, max_pixels=MAX_PIXELS) is None:
            refused_by_codec += 1
        else:
            decoded += 1
    assert passed >= 0.6 * n, f"only {passed}/{n} mutants passed the container checks"
    assert decoded >= 0.1 * n and refused_by_codec >= 0.1 * n, (decoded, refused_by_codec)


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@settings(max_examples=250, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_decoders_survive_mutants(seeds, data):
    name = data.draw(st.sampled_from(sorted(seeds)), label="seed")
    blob = imc_fuzz.mutate(seeds[name], lambda n: data.draw(st.integers(0, n - 1)))
    shape = imc_fuzz.header_shape(blob)
    budget = ALLOC_SLACK + ALLOC_PER_VALUE * int(np.prod(shape, dtype=np.int64))
    rss_before = _peak_rss()
    tracemalloc.start()
    cpu = time.process_time()
    try:
        imc_fuzz.check_decoder(blob, max_pixels=MAX_PIXELS)
    finally:
        cpu = time.process_time() - cpu
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert cpu < CPU_BUDGET, f"decoding a {len(blob)}-byte {name} mutant took {cpu:.1f} s of CPU"
    assert peak < budget, f"{name} mutant: {peak} bytes allocated for a {shape} image"
    # numba's own allocations escape tracemalloc; the process's peak RSS does not
    assert _peak_rss() - rss_before < budget


REPRODUCERS = sorted((Path(__file__).resolve().parent / "data" / "fuzz").glob("*.imc"))


@pytest.mark.parametrize("path", REPRODUCERS, ids=lambda p: p.name)
def test_reproducers(seeds, path):
    """Files that once made a decoder misbehave (fuzz/README.md): under the default
    pixel limit, refused or decoded within the budgets.

    pca-patch-claims-10000x10000.imc: a 485-byte file whose header claims 10^8
    pixels decoded zeros past the end of its stream for 20-30 s and +340 MB RSS
    before reporting the truncation.
    """
    blob = path.read_bytes()
    rss_before = _peak_rss()
    cpu = time.process_time()
    imc_fuzz.check_decoder(blob, max_pixels=imcompress.io.max_pixels_default())
    assert time.process_time() - cpu < CPU_BUDGET
    assert _peak_rss() - rss_before < ALLOC_SLACK
