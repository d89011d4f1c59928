"""Where batch work runs: this process (`local`) or a Ray cluster (`ray`), behind one interface.

    with open_engine("ray", address="ray://head:10001") as engine:
        for batch, result in engine.map(factory, batched(records, 512)):
            ...

`factory` is a picklable zero-argument callable; each worker calls it once to build the
batch function (loading a guard or a model once per worker). Ray is imported only when the
Ray engine is chosen, so it stays an optional extra (`bastion-guard[ray]`).
"""

from __future__ import annotations

import importlib.util

from bastion.engine.base import Engine, batched, ordered
from bastion.engine.local import LocalEngine
from bastion.errors import ConfigError

ENGINES = ("local", "ray")
RAY_EXTRA = 'pip install "bastion-guard[ray]"'

__all__ = ["ENGINES", "Engine", "LocalEngine", "batched", "open_engine", "ordered"]


def open_engine(name: str, *, address: str | None = None, workers: int | None = None, threads: int = 1) -> Engine:
    """The engine called `name`; enter it (`with`) to connect. `threads` is each worker's CPU share."""
    if name not in ENGINES:
        raise ConfigError(f"--engine must be local or ray, not {name!r}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}")
    if name == "local":
        if address is not None:
            raise ConfigError("--ray-address needs --engine ray")
        return LocalEngine(workers)
    if importlib.util.find_spec("ray") is None:
        raise ConfigError(f"--engine ray needs Ray; run: {RAY_EXTRA}")
    from bastion.engine.ray import RayEngine

    return RayEngine(address, workers=workers, cpus_per_worker=threads)
