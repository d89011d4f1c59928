"""Command-line options shared by the commands that run on an engine (score, eval, redteam)."""

from __future__ import annotations

from typing import Annotated

import typer

EngineOption = Annotated[str, typer.Option("--engine", help="Where batches run: local (threads of this process) or ray (actors on a Ray cluster; needs bastion-guard[ray]).")]
RayAddressOption = Annotated[str | None, typer.Option("--ray-address", help="Ray cluster to join: ray://HOST[:10001] (Ray Client) or HOST:PORT (the head's GCS port); default $RAY_ADDRESS, else a local cluster started for the run.")]
WorkersOption = Annotated[int | None, typer.Option("--workers", help="Parallel workers: threads for --engine local, Ray actors for --engine ray (default: the CPU count, or the cluster's CPUs / --threads).")]
ThreadsOption = Annotated[int, typer.Option("--threads", min=1, help="CPU threads per worker for ONNX Runtime and BLAS; results are bit-identical across engines for the same --threads and --batch-size.")]
ShipGuardOption = Annotated[bool, typer.Option("--ship-guard", help="Send the guard artifact's files to the Ray workers through the object store, for nodes that lack it.")]
