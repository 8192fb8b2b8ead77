"""``.imc`` where images are opened: plugins for Pillow and imageio.

Pillow
    Registered by ``import imcompress``. Then ``Image.open("photo.imc")``
    gives an RGB or RGBA image and ``im.save("out.imc", method="pca-patch",
    quality=60)`` writes one.
imageio (v3)
    Registered by ``import imcompress`` when imageio is already imported,
    otherwise by :func:`register_imageio` (neither imports imageio for you).
    Then ``iio.imread("photo.imc")`` and ``iio.imwrite("x.imc", arr,
    method="kmeans", n_colors=16)``.

Both decode with :func:`imcompress.decompress`: same checks, same pixel limit,
same :class:`imcompress.CorruptFileError`.
"""

from __future__ import annotations

import sys

__all__ = ["IMAGEIO_PLUGIN", "PILLOW_FORMAT", "register_imageio", "register_pillow"]

#: Pillow's format name for ``.imc`` (``im.format``, ``save(format=...)``).
PILLOW_FORMAT = "IMC"
#: imageio's plugin name for ``.imc`` (``iio.imread(..., plugin=...)``).
IMAGEIO_PLUGIN = "imcompress"


def register_pillow() -> None:
    """Register the ``IMC`` format with Pillow (idempotent)."""
    from ._pillow import register

    register()


def register_imageio() -> None:
    """Register the ``imcompress`` plugin with imageio for ``.imc`` (idempotent).

    Imports ``imageio.config`` (so it imports imageio); the plugin module itself
    is imported by imageio when a ``.imc`` file is first read or written.
    """
    from imageio.config import FileExtension, PluginConfig, known_extensions, known_plugins

    known_plugins[IMAGEIO_PLUGIN] = PluginConfig(
        name=IMAGEIO_PLUGIN, class_name="ImcPlugin", module_name="imcompress.plugins._imageio"
    )
    entries = [e for e in known_extensions.get(".imc", []) if IMAGEIO_PLUGIN not in e.priority]
    ours = FileExtension(
        extension=".imc",
        priority=[IMAGEIO_PLUGIN],
        name="imcompress",
        description="Images compressed by imcompress (K-means, row PCA, patch PCA)",
    )
    known_extensions[".imc"] = [ours, *entries]


def _register_on_import() -> None:
    register_pillow()
    if "imageio" in sys.modules:
        register_imageio()
