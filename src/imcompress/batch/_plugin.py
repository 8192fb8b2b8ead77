"""The Dask side of a worker: a plugin set up once per worker, and the task.

The plugin carries the batch's settings, so each task carries only paths.
Its :meth:`~BatchWorkerPlugin.setup` caps the BLAS/OpenMP pools at one thread
per worker thread and compiles the numba kernels before the first task
(:func:`._worker.warm_up`); Dask runs it on every worker, including workers
that join or are restarted later. A task is a small group of inputs (see
``_run._groups``), so Dask's per-task cost is shared by several files.
"""

from __future__ import annotations

import asyncio

from distributed import WorkerPlugin, get_worker

from ._plan import Job
from ._settings import BatchSettings
from ._worker import cap_threads, compress_group, plugin_name, warm_up

__all__ = ["BatchWorkerPlugin", "run_task"]


class BatchWorkerPlugin(WorkerPlugin):
    """The batch's settings on every worker, and its set-up.

    ``own_processes``: the workers are processes the batch started (its local
    cluster), so their numba may be set up the way the command line sets up
    its own process (``imcompress.cli._startup``: without two optional
    imports its kernels do not use, ~0.15-0.2 s of CPU per worker); on a
    user's cluster numba is left as it is.
    """

    def __init__(self, settings: BatchSettings, *, own_processes: bool = False):
        self.settings = settings
        self.name = plugin_name(settings)
        self.own_processes = own_processes
        self.warm_seconds = None

    async def setup(self, worker):
        # off the event loop, so the worker keeps answering the scheduler while numba compiles
        loop = asyncio.get_running_loop()
        self.warm_seconds = await loop.run_in_executor(None, self._setup_blocking)

    def _setup_blocking(self):
        if self.own_processes:
            from ..cli._startup import import_numba, set_up_numba

            import_numba()
            set_up_numba()
        cap_threads(1)
        return warm_up(self.settings)


def run_task(jobs: tuple[Job, ...], name: str, dst: str) -> list[dict]:
    """The Dask task: compress a group of inputs with the settings of the worker's plugin ``name``.

    Returns one manifest record per input, in order (:func:`._worker.compress_group`).
    """
    try:
        settings = get_worker().plugins[name].settings
    except KeyError:  # pragma: no cover - register_plugin returns only after every setup
        raise RuntimeError(f"worker plugin {name} is not set up on this worker") from None
    return compress_group(jobs, settings, dst)
