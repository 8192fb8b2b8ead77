"""An option a method does not take is a UsageError naming it and the method's
options, from the library, the Pillow plugin and the imageio plugin alike."""

import inspect

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

import imcompress
from imcompress import UsageError
from imcompress.plugins import register_imageio

IMAGE = np.arange(12 * 16 * 3, dtype=np.uint8).reshape(12, 16, 3)


def _options(method):
    """The method's options as its __init__ declares them (an independent reading)."""
    params = list(inspect.signature(imcompress.get_codec(method).__init__).parameters)[1:]
    assert params, method
    return params


def _assert_names_options(message, method):
    assert "\n" not in message
    assert "'bogus'" in message and repr(method) in message, message
    for name in _options(method):
        assert name in message, (name, message)


@pytest.mark.parametrize("method", imcompress.available_methods())
def test_compress_unknown_option_is_a_usage_error(method):
    with pytest.raises(UsageError, match=r"unknown option 'bogus' for method") as info:
        imcompress.compress(IMAGE, method, bogus=1)
    assert not isinstance(info.value, TypeError)
    _assert_names_options(str(info.value), method)


def test_compress_names_every_unknown_option_and_keeps_the_valid_ones():
    with pytest.raises(UsageError, match=r"unknown options 'bogus', 'colours'") as info:
        imcompress.compress(IMAGE, "kmeans", n_colors=4, bogus=1, colours=3)
    assert "'n_colors'" not in str(info.value).split(";")[0]
    # the declared CLI options are all accepted by compress
    for option in imcompress.get_codec("kmeans").options:
        assert option.name in _options("kmeans")


@pytest.mark.parametrize("method", imcompress.available_methods())
def test_pillow_save_unknown_option(method, tmp_path):
    target = tmp_path / "bad.imc"
    with pytest.raises(UsageError, match=r"unknown option 'bogus' for method") as info:
        Image.fromarray(IMAGE).save(target, format="IMC", method=method, bogus=1)
    _assert_names_options(str(info.value), method)
    assert not target.exists()


@pytest.mark.parametrize("method", imcompress.available_methods())
def test_imageio_write_unknown_option(method, tmp_path):
    register_imageio()
    target = tmp_path / "bad.imc"
    with pytest.raises(UsageError, match=r"unknown option 'bogus' for method") as info:
        iio.imwrite(target, IMAGE, method=method, bogus=1)
    _assert_names_options(str(info.value), method)
    assert not target.exists()
