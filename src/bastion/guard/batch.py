"""A guard as engine work: a picklable recipe that each worker turns into a loaded guard once.

A loaded Guard holds ONNX Runtime sessions and cannot be pickled, so what travels to a
worker is a `GuardSpec`: the guard's name or path, the thread count every worker must use
(results are bit-identical across engines only for the same threads and batch size), the
sha256 of the driver's manifest (so a node holding another version at the same path is
refused, not silently used), and optionally the artifact's files themselves.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bastion.data.records import Example, Kind
from bastion.engine import Engine, batched
from bastion.errors import ArtifactError
from bastion.guard.guard import BUNDLED, Guard, bundled_path
from bastion.guard.verdict import Verdict
from bastion.models.artifacts import MANIFEST, read_manifest, sha256_file

ON_EVERY_NODE = ("; with --engine ray every node needs the same artifact: the bundled 'default' guard (bastion-guard "
                 "installed on each node), a --guard path on a filesystem all nodes share, or --ship-guard to send the "
                 "driver's copy through Ray's object store")


@dataclass(frozen=True)
class GuardSpec:
    """How a worker loads the guard: by name or path, or from the shipped files."""

    guard: str
    threads: int = 1
    manifest_sha256: str | None = None
    files: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def of(cls, guard: str, *, threads: int = 1, ship: bool = False) -> GuardSpec:
        """The spec for `guard` as this machine sees it; `ship` carries its files along.

        A path that exists here is made absolute (workers do not share our working directory)
        and its manifest hash recorded; one that does not may still exist on the workers.
        """
        path = bundled_path(guard) if guard in BUNDLED else Path(guard)
        if not (path / MANIFEST).is_file():
            if ship:
                read_manifest(path)  # raises the reason this is not an artifact
            return cls(guard, threads)
        location = guard if guard in BUNDLED else str(path.resolve())
        files: tuple[tuple[str, bytes], ...] = ()
        if ship:
            names = [MANIFEST, *sorted(read_manifest(path).get("files", {}))]
            files = tuple((name, (path / name).read_bytes()) for name in names)
        return cls(location, threads, sha256_file(path / MANIFEST), files)

    def load(self) -> Guard:
        """Load the guard with `threads` for ONNX Runtime and BLAS (set for this whole process)."""
        from threadpoolctl import threadpool_limits

        threadpool_limits(self.threads)
        if self.files:
            with tempfile.TemporaryDirectory(prefix="bastion-guard-") as tmp:
                for name, data in self.files:
                    target = Path(tmp) / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                return Guard.load(tmp, threads=self.threads)  # sessions and arrays are read in full here
        path = bundled_path(self.guard) if self.guard in BUNDLED else Path(self.guard)
        if not path.exists():
            raise ArtifactError(f"{self.guard}: not a guard artifact directory (no such path on this machine){ON_EVERY_NODE}")
        if self.manifest_sha256 is not None and sha256_file(path / MANIFEST) != self.manifest_sha256:
            raise ArtifactError(f"{self.guard}: the guard here differs from the driver's copy (manifest sha256){ON_EVERY_NODE}")
        return Guard.load(path, threads=self.threads)


@dataclass(frozen=True)
class GuardScorer:
    """Engine factory: loads the guard once per worker; the function it builds scores a batch."""

    spec: GuardSpec
    kind: Kind = "input"

    def __call__(self) -> Callable[[Sequence[Example]], list[Verdict]]:
        guard = self.spec.load()
        kind = self.kind

        def score(examples: Sequence[Example]) -> list[Verdict]:
            return guard.score_examples(examples, kind)

        return score


def score_records(engine: Engine, spec: GuardSpec, records: Iterable[Example], kind: Kind = "input", *,
                  batch_size: int = 512, on_batch: Callable[[int], None] = lambda _: None) -> Iterator[tuple[Example, Verdict]]:
    """Each record with its verdict, in input order, scored in batches of `batch_size` on `engine`."""
    for batch, verdicts in engine.map(GuardScorer(spec, kind), batched(records, batch_size)):
        on_batch(len(batch))
        yield from zip(batch, verdicts, strict=True)
