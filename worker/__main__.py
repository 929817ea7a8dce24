"""``python -m worker``: the same as ``proxns worker`` (used by ``proxns serve`` and ``--gpus``)."""

from worker.cli import worker

worker(prog_name="proxns worker")
