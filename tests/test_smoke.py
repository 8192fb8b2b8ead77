import numpy as np

import imcompress
from imcompress.format import pack_container, unpack_container


def test_sample_image_is_a_photo(sample):
    assert sample.shape == (512, 512, 3) and sample.dtype == np.uint8
    assert imcompress.metrics.unique_colors(sample) > 10_000


def test_container_roundtrip_sections():
    data = pack_container(1, 5, 7, 3, [(b"PARM", b"\x01\x02"), (b"DATA", b"x" * 100)])
    c = unpack_container(data)
    assert (c.height, c.width, c.channels, c.method_id) == (5, 7, 3, 1)
    assert c.section(b"DATA") == b"x" * 100 and c.size == len(data)
