"""The Ray engine: the same batches on actors of a Ray cluster, local or remote.

Each actor calls the factory once (so a guard is loaded once per worker) and then serves
batches. The factory is put in the object store once, so a heavy one (a shipped guard
artifact) travels to each node once, not once per actor. A batch whose worker raises is
sent again; one whose worker dies is sent to a fresh actor in its place (which builds the
batch function anew). Results are collected by the batch's place in the input, so a retried
batch is written once, in its place. Bastion's own errors (a bad record, a missing guard)
are not retried: they would fail the same way again.
"""

from __future__ import annotations

import functools
import itertools
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import ray
from ray.exceptions import RayActorError, RayTaskError

from bastion import __version__
from bastion.engine.base import ordered
from bastion.errors import BastionError, EngineError

T = TypeVar("T")
R = TypeVar("R")
CLIENT_PORT = 10001  # Ray Client's default port on the head node (ray://host)
START_TIMEOUT_S = 120.0


@ray.remote
class _Worker:
    """One worker: the batch function built once, then applied to each batch sent to it."""

    def __init__(self, shared: list[ray.ObjectRef]) -> None:
        self.fn: Callable[[Any], Any] | None = None
        self.error: str | None = None
        try:
            self.fn = ray.get(shared[0])()
        except BastionError as exc:  # reported by ready(), so the driver can say which node lacks what
            self.error = str(exc)

    def ready(self) -> tuple[str, str | None]:
        return ray.util.get_node_ip_address(), self.error

    def run(self, batch: Any) -> Any:
        if self.fn is None:
            raise EngineError(f"worker could not start: {self.error}")
        return self.fn(batch)


class RayEngine:
    """Batches on `workers` Ray actors (default: the cluster's CPUs / `cpus_per_worker`).

    `address`: None joins $RAY_ADDRESS or starts a local cluster for the run; `host:port`
    (the head's GCS port) or `ray://host[:port]` (Ray Client) joins an existing cluster. A
    process that has already called `ray.init` keeps its connection.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, workers: int | None = None, cpus_per_worker: int = 1,
                 retries: int = 3, start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.address = address
        self.requested = workers
        self.workers = workers or 0
        self.cpus_per_worker = cpus_per_worker
        self.retries = retries
        self.start_timeout_s = start_timeout_s
        self._owns_ray = False

    def __enter__(self) -> RayEngine:
        if not ray.is_initialized():
            _connect(self.address)
            self._owns_ray = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = self.requested or max(1, cpus // self.cpus_per_worker)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False

    def map(self, factory: Callable[[], Callable[[T], R]], batches: Iterable[T]) -> Iterator[tuple[T, R]]:
        if not ray.is_initialized():
            raise EngineError("the Ray engine is not connected; use it as a context manager (with RayEngine(...) as engine)")
        try:
            actors = _Actors(ray.put(factory), self.workers, self.cpus_per_worker)
            self._wait_ready(actors.handles)
        except (RayActorError, RayTaskError, ImportError, AttributeError) as exc:  # the nodes cannot unpickle our code
            last = str(exc).strip().splitlines()[-1] if str(exc).strip() else exc.__class__.__name__
            raise EngineError(f"Ray workers could not start ({last}); every node needs bastion-guard {__version__} "
                              "installed, the same version as the driver") from None
        try:
            yield from ordered(batches, actors.submit, functools.partial(self._result, actors), 2 * self.workers)
        finally:
            actors.kill()

    def _wait_ready(self, actors: list[Any]) -> None:
        """Every worker built its batch function, or a clear error naming the node and the fix."""
        started = time.monotonic()
        refs = [a.ready.remote() for a in actors]
        done, _ = ray.wait(refs, num_returns=len(refs), timeout=self.start_timeout_s)
        if len(done) < len(refs):
            cpus = ray.cluster_resources().get("CPU", 0)
            raise EngineError(f"only {len(done)} of {len(refs)} Ray workers started within {time.monotonic() - started:.0f} s; "
                              f"the cluster has {cpus:g} CPUs and each worker takes {self.cpus_per_worker}: "
                              "lower --workers or --threads, or add nodes")
        for node, error in ray.get(done):
            if error is not None:
                raise EngineError(f"a Ray worker on node {node} could not start: {error}")

    def _result(self, actors: _Actors, task: _Task) -> Any:
        """The batch's result, sending it again (to a fresh actor if its worker died) up to `retries` times."""
        for attempt in range(self.retries + 1):
            try:
                return ray.get(task.ref)
            except RayTaskError as exc:
                if isinstance(exc.cause, BastionError):
                    raise exc.cause from None
                failure: Exception = exc
                died = False
            except RayActorError as exc:
                failure, died = exc, True
            if attempt < self.retries:
                task = actors.resubmit(task, replace=died)
        cause = failure.cause if isinstance(failure, RayTaskError) else f"worker died ({failure.__class__.__name__}); see the Ray logs of its node"
        raise EngineError(f"a batch failed on all {self.retries + 1} tries: {cause!r}") from failure


@dataclass(frozen=True)
class _Task:
    slot: int
    actor: Any
    batch: Any
    ref: ray.ObjectRef


class _Actors:
    """The workers, taking batches in turn; a dead one is replaced in its slot."""

    def __init__(self, factory: ray.ObjectRef, n: int, cpus: int) -> None:
        self.shared = [factory]  # nested, so Ray passes the reference and each actor fetches the factory itself
        self.cpus = cpus
        self.handles = [self._start() for _ in range(n)]
        self.turns = itertools.count()

    def _start(self) -> Any:
        return _Worker.options(num_cpus=self.cpus).remote(self.shared)  # type: ignore[attr-defined]

    def submit(self, batch: Any) -> _Task:
        slot = next(self.turns) % len(self.handles)
        return _Task(slot, self.handles[slot], batch, self.handles[slot].run.remote(batch))

    def resubmit(self, task: _Task, *, replace: bool) -> _Task:
        if replace and self.handles[task.slot] is task.actor:  # the first of its failed batches replaces it
            self.handles[task.slot] = self._start()
        actor = self.handles[task.slot]
        return _Task(task.slot, actor, task.batch, actor.run.remote(task.batch))

    def kill(self) -> None:
        for actor in self.handles:
            ray.kill(actor, no_restart=True)


def _connect(address: str | None) -> None:
    """`ray.init`, after a quick reachability check: an unreachable GCS makes Ray retry for minutes."""
    if address not in (None, "auto", "local"):
        _check_reachable(address)
    kwargs: dict[str, Any] = {"address": address, "logging_level": "WARNING"}
    if address == "local" or (address is None and not os.environ.get("RAY_ADDRESS")):
        kwargs["include_dashboard"] = False  # starting a cluster: Ray refuses this option when joining one
    try:
        ray.init(**kwargs)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        raise EngineError(f"cannot connect to the Ray cluster at {address or 'a new local cluster'}: {exc}") from exc


def _check_reachable(address: str) -> None:
    client = address.startswith("ray://")
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":") if ":" in target else (target, "", str(CLIENT_PORT) if client else "")
    if not host or not port.isdigit():
        raise EngineError(f"--ray-address {address!r}: expected ray://HOST[:PORT] (Ray Client) or HOST:PORT (the head's GCS port)")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        which = "its Ray Client port (ray start --head opens 10001)" if client else "its GCS port (6379 by default)"
        raise EngineError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); check the address, "
                          f"that the head node is running and that {which} is open to this machine") from None
