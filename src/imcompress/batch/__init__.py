"""Batch compression of whole folders on Dask, resumable, with a manifest.

An interface layer, like the CLI: the core library never imports it, and
Dask is imported only here (and only when a batch runs). Install with
``pip install 'imcompress[batch]'``.

Examples
--------
>>> from imcompress.batch import BatchSettings
>>> BatchSettings("kmeans", {"n_colors": 16}).output_suffix
'.kmeans.imc'
"""

from ._manifest import read_manifest
from ._plan import Job, Plan, Refusal, is_image_file, plan_batch
from ._run import BatchSummary, run_batch
from ._settings import IF_LARGER, BatchSettings
from ._worker import compress_job

__all__ = [
    "IF_LARGER",
    "BatchSettings",
    "BatchSummary",
    "Job",
    "Plan",
    "Refusal",
    "compress_job",
    "is_image_file",
    "plan_batch",
    "read_manifest",
    "run_batch",
]
