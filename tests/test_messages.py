"""Library errors name keyword arguments and environment variables; the CLI adds its flags."""

import numpy as np
import pytest

import imcompress
from imcompress import CorruptFileError, InputError, QualityError, UsageError
from imcompress.cli import main
from imcompress.cli._main import with_flag_names
from imcompress.codecs import Trial, search_target
from imcompress.format import unpack_container


@pytest.fixture
def png(tmp_path):
    from PIL import Image

    path = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(path)
    return path


def _no_flag(message):
    assert " --" not in message and not message.startswith("--"), message


def test_read_image_names_the_keyword_and_the_variable(png):
    with pytest.raises(InputError, match="raise it with max_pixels= or the IMCOMPRESS_MAX_PIXELS") as err:
        imcompress.read_image(png, max_pixels=10)
    _no_flag(str(err.value))


def test_container_names_the_keyword_and_the_variable():
    data = imcompress.compress(np.zeros((4, 5, 3), np.uint8) + np.arange(5, dtype=np.uint8)[:, None], "kmeans",
                               n_colors=2)
    with pytest.raises(CorruptFileError, match="max_pixels= or the IMCOMPRESS_MAX_PIXELS environment") as err:
        unpack_container(data, max_pixels=3)
    _no_flag(str(err.value))


def test_codec_and_search_messages_name_keywords():
    with pytest.raises(UsageError, match=r"random_state=-1 should be an integer from 0 to 4294967295 or None$") as err:
        imcompress.get_codec("kmeans")(random_state=-1).encode(np.zeros((2, 2, 3), np.uint8))
    _no_flag(str(err.value))
    with pytest.raises(InputError, match="use method 'kmeans' or 'pca-patch'") as err:
        imcompress.compress(np.zeros((1, 4, 3), np.uint8), "pca-rows")
    _no_flag(str(err.value))
    with pytest.raises(UsageError, match=r"fixed_colors is empty"):
        imcompress.get_codec("kmeans")(fixed_colors=" , ").encode(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(QualityError, match="relax the target or pass best_effort=True") as err:
        search_target(lambda v: Trial(v, b"x" * 10, 20.0), [1], target_psnr=30)
    _no_flag(str(err.value))
    for kwargs, match in (({"target_psnr": 300}, r"target_psnr=300 should be in \(0, 200\) dB"),
                          ({"max_bytes": 0}, "max_bytes=0 should be >= 1"), ({}, "give target_psnr= and/or")):
        with pytest.raises(UsageError, match=match):
            search_target(lambda v: None, [1], **kwargs)


def test_with_flag_names():
    flags = {"n_colors": "-k/--colors", "max_pixels": "--max-pixels", "colors": "--nope"}
    assert with_flag_names("n_colors=3 is bad", flags) == "n_colors=3 is bad (on the command line n_colors= is -k/--colors)"
    assert with_flag_names("raise max_pixels= or X", flags).endswith("(on the command line max_pixels= is --max-pixels)")
    assert with_flag_names("nothing to add", flags) == "nothing to add"
    # whole keywords only: n_colors= is not colors=
    assert "--nope" not in with_flag_names("n_colors=3", flags)


def test_cli_adds_its_flags(png, capsys, tmp_path):
    code = main(["compress", str(png), "--max-pixels", "10", "-o", str(tmp_path / "o.imc")])
    err = capsys.readouterr().err
    assert code == 2 and "max_pixels= or the IMCOMPRESS_MAX_PIXELS" in err and "max_pixels= is --max-pixels" in err
    code = main(["compress", str(png), "--seed", "-1", "-o", str(tmp_path / "o.imc")])
    err = capsys.readouterr().err
    assert code == 4 and "random_state= is --seed" in err and err.count("\n") == 1
    data = imcompress.compress(imcompress.load_image(png), "kmeans", n_colors=4)
    (tmp_path / "a.imc").write_bytes(data)
    code = main(["info", str(tmp_path / "a.imc"), "--max-pixels", "5"])
    err = capsys.readouterr().err
    assert code == 3 and "max_pixels= is --max-pixels" in err
