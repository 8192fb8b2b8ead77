"""What a batch does to every input, as one small frozen value.

The settings travel to the workers once (in the worker plugin), never with
each task, and their hash is written beside every manifest line so that a
re-run knows which results it may keep.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from .._errors import UsageError

__all__ = ["BatchSettings", "IF_LARGER"]

#: What to do when a result is larger than its input file.
IF_LARGER = ("write", "skip", "copy")


@dataclass(frozen=True)
class BatchSettings:
    """The compression applied to each input of a batch.

    Parameters
    ----------
    method : str
        A registered method name.
    params : dict
        The codec's ``__init__`` parameters (``codec.get_params()``).
    format : {"imc", "png"}, default="imc"
    suffix : str, optional
        Replaces each input's extension in the output name; default
        ``.METHOD.FORMAT``.
    target_psnr, max_bytes, best_effort
        As in :func:`imcompress.compress_to_target`.
    strip : bool, default=False
        Drop the ICC colour profile.
    if_larger : {"write", "skip", "copy"}, default="write"
        A result larger than its input is written anyway, not written
        (``skipped``), or replaced by a copy of the input (``copied``).
    max_pixels : int, optional
        Refuse larger images (default as :func:`imcompress.read_image`).
    """

    method: str
    params: dict = field(default_factory=dict)
    format: str = "imc"
    suffix: str | None = None
    target_psnr: float | None = None
    max_bytes: int | None = None
    best_effort: bool = False
    strip: bool = False
    if_larger: str = "write"
    max_pixels: int | None = None

    def __post_init__(self):
        if self.if_larger not in IF_LARGER:
            raise UsageError(f"if_larger={self.if_larger!r} should be one of {', '.join(IF_LARGER)}")
        if self.suffix is not None and ("/" in self.suffix or "\\" in self.suffix or not self.suffix):
            raise UsageError(f"--ext {self.suffix!r} should be a file-name suffix such as .imc, without a folder")

    @property
    def output_suffix(self) -> str:
        return self.suffix if self.suffix is not None else f".{self.method}.{self.format}"

    def digest(self) -> str:
        """SHA-256 of everything that changes the bytes written (not the output names)."""
        fields = asdict(self)
        fields.pop("suffix")
        text = json.dumps(fields, sort_keys=True, default=repr, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
