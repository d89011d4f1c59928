"""The `bastion` command line: a thin layer over the library.

Every command turns BastionError into a one-line message and its exit code, so a user sees
what is wrong and where, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from bastion import __version__
from bastion.config import Settings
from bastion.console import err, friendly, out, progress
from bastion.engine.options import EngineOption, RayAddressOption, ShipGuardOption, ThreadsOption, WorkersOption
from bastion.errors import BastionError, ExitCode, RecordError
from bastion.llm.commands import generate
from bastion.redteam.commands import redteam
from bastion.serve.commands import audit_app, keys_app, serve

if TYPE_CHECKING:
    from bastion.data.records import Example
    from bastion.data.records import Kind as RecordKind
    from bastion.guard.verdict import Verdict

app = typer.Typer(help="Bastion: constitutional classifiers that guard any LLM.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
constitution_app = typer.Typer(help="Validate, show and test constitutions.", no_args_is_help=True)
app.add_typer(constitution_app, name="constitution")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.command()(serve)
app.command()(redteam)
app.command()(generate)
GuardOption = Annotated[str, typer.Option("--guard", "-g", help="Guard artifact directory, or 'default' for the bundled guard.")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Records scored per batch (a fixed size gives the same scores on every engine).")]
Kind = Annotated[str, typer.Option("--kind", help="What to score: input (the prompt/conversation), output (the response) or exchange (both).")]


def _kind(value: str) -> str:
    if value not in ("input", "output", "exchange"):
        raise BastionError(f"--kind must be input, output or exchange, not {value!r}")
    return value


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False) -> None:
    if version:
        out.print(__version__)
        raise typer.Exit()


# -- constitution ------------------------------------------------------------------------


@constitution_app.command("validate")
@friendly
def constitution_validate(file: Annotated[Path, typer.Argument(help="Constitution YAML file.")]) -> None:
    """Check a constitution file; print its categories and content hash."""
    from bastion.constitution import load

    c = load(file)
    out.print(f"[green]valid[/] {c.name} v{c.version}: {len(c.restricted)} restricted, {len(c.permitted)} permitted categories; sha256 {c.content_hash()}")


@constitution_app.command("show")
@friendly
def constitution_show(name: Annotated[str, typer.Argument(help="Bundled name (general, cbrn) or YAML file.")]) -> None:
    """Print a constitution's rules as a table."""
    from bastion.constitution import load

    c = load(name)
    out.print(f"[bold]{c.name}[/] v{c.version} - {c.description}\nhash {c.content_hash()}  target FPR {c.operating_point.target_fpr:.2%}")
    table = Table("kind", "id", "title", "description", show_lines=True)
    for kind, cats in (("restricted", c.restricted), ("permitted", c.permitted)):
        for cat in cats:
            table.add_row(kind, cat.id, cat.title, cat.description)
    out.print(table)
    for note in c.notes:
        out.print(f"- {note}")


@constitution_app.command("test")
@friendly
def constitution_test(
    name: Annotated[str, typer.Argument(help="Bundled name or YAML file.")],
    guard: GuardOption = "default",
) -> None:
    """Score the constitution's own examples with a guard and list the ones it gets wrong."""
    from bastion.constitution import load
    from bastion.data.records import Example
    from bastion.guard import Guard

    c = load(name)
    g = Guard.load(guard)
    cases = [(cat.id, 1, ex) for cat in c.restricted for ex in cat.examples]
    cases += [(cat.id, 0, ex) for cat in c.permitted for ex in cat.examples]
    verdicts = g.score_examples([Example(prompt=text) for _, _, text in cases])
    wrong = [(cid, label, text, v) for (cid, label, text), v in zip(cases, verdicts, strict=True) if int(v.flagged) != label]
    table = Table("category", "expected", "score", "example")
    for cid, label, text, v in wrong:
        table.add_row(cid, "flag" if label else "pass", f"{v.score:.3f}", text)
    out.print(table if wrong else "[green]every example scored as its category says[/]")
    out.print(f"{len(cases) - len(wrong)}/{len(cases)} correct")
    if wrong:
        raise typer.Exit(int(ExitCode.FAILED))


# -- train -------------------------------------------------------------------------------


@app.command()
@friendly
def train(
    constitution: Annotated[str, typer.Option("--constitution", "-c", help="Bundled name (general, cbrn) or YAML file.")] = "general",
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to write the guard artifact to.")] = Path("guard"),
    data: Annotated[list[Path], typer.Option("--data", help="Extra labelled JSONL files to train on.")] = [],  # noqa: B006
    responses: Annotated[list[Path], typer.Option("--responses", help="Labelled JSONL records with a 'response' for the output classifier.")] = [],  # noqa: B006
    exclude: Annotated[list[Path], typer.Option("--exclude", help="Drop training records near-duplicate to these evaluation JSONL files.")] = [],  # noqa: B006
    dev_pool: Annotated[bool, typer.Option(help="Use the trainable development-pool sources under BASTION_DATA_DIR.")] = True,
    seed: Annotated[int, typer.Option(help="Random seed; same inputs and seed give the same guard.")] = 13,
    stage2: Annotated[str, typer.Option(help="none: stage 1 only; embed: add stage 2 (small MLP heads on the frozen encoder, minutes) and fit the cascade; finetune: fine-tune the encoder instead (needs bastion[train], ~30 min on 2 cores); reuse: take the stage-2 model of --stage2-from.")] = "none",
    stage2_from: Annotated[str | None, typer.Option(help="Guard artifact (or 'default') whose stage-2 model --stage2 reuse takes.")] = None,
    epochs: Annotated[float, typer.Option(help="Fine-tuning epochs for --stage2 finetune.")] = 1.0,
    escalation_rate: Annotated[float, typer.Option(help="Share of benign calibration traffic the cascade sends to stage 2.")] = 0.08,
    output_loss: Annotated[str, typer.Option(help="Output-classifier loss over response prefixes: prefix_bce, cumulative_max or softmax_window (window 16, tau 1).")] = "prefix_bce",
    short_words: Annotated[int, typer.Option(help="Inputs of at most this many words always go to stage 2 (cheap for short inputs, where stage 1 is weakest); 0 escalates by stage-1 score alone.")] = 24,
    segment_rate: Annotated[float, typer.Option(help="Long inputs are also read sentence by sentence, at a threshold that flags this share of long benign calibration inputs; 0 reads inputs whole only.")] = 0.005,
) -> None:
    """Train a guard from a constitution's seed corpus (plus the development pool) and calibrate it."""
    import shutil
    import time

    from bastion.constitution import load, resolve
    from bastion.data.jsonl import read_examples
    from bastion.models.prefix_loss import LOSSES
    from bastion.patch.replay import build_replay, save_with_replay
    from bastion.training import TrainConfig, build_corpus, train_guard, training_record, training_records

    settings = Settings()
    c = load(constitution)
    text = resolve(constitution).read_text(encoding="utf-8")
    if stage2 not in ("none", "embed", "finetune", "reuse"):
        raise BastionError(f"--stage2 must be none, embed, finetune or reuse, not {stage2!r}")
    if output_loss not in LOSSES:
        raise BastionError(f"--output-loss must be one of {', '.join(LOSSES)}, not {output_loss!r}")
    config = TrainConfig(seed=seed, use_dev_pool=dev_pool, stage2=stage2, stage2_from=stage2_from, stage2_epochs=epochs,
                         escalation_rate=escalation_rate, output_loss=output_loss,  # type: ignore[arg-type]
                         short_words=short_words, segment_rate=segment_rate)
    workdir = output.resolve().parent / f".{output.name}.stage2-work"
    started = time.perf_counter()
    with err.status("building corpus") as status:
        def progress(message: str) -> None:
            status.update(message)
            err.log(message)

        if dev_pool and settings.data_dir is None:
            err.print("[yellow]no development pool found (set BASTION_DATA_DIR); training on the seed corpus only[/]")
        corpus = build_corpus(c, settings.data_dir, use_dev_pool=dev_pool, extra=data, exclude=exclude, progress=progress)
        try:
            response_records = [e for path in responses for e in read_examples(path)]
            guard = train_guard(c, corpus, config, constitution_text=text, workdir=workdir, data_dir=settings.data_dir,
                                responses=response_records, progress=progress)
            extra = {"training": training_record(corpus, config) | {"seconds": round(time.perf_counter() - started, 1)}}
            replay = build_replay(training_records(corpus, config), corpus.splits["calibration"], seed)
            save_with_replay(guard, output, extra, replay)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    out.print(f"[green]saved[/] guard for {c.name} to {output} ({extra['training']['seconds']} s)")


# -- patch / rollback --------------------------------------------------------------------


@app.command()
@friendly
def patch(
    jailbreak: Annotated[list[Path], typer.Option("--jailbreak", "-j", help="An observed jailbreak: a text file (one prompt) or JSONL (one record a line, 'prompt' or 'messages'). Repeat for more examples (1-5 is typical). Mark the request with {request} if it is not found automatically.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to write the patched guard to.")],
    guard: GuardOption = "default",
    report: Annotated[Path | None, typer.Option("--report", help="Also write the patch's before/after metrics and lineage as JSON here.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed for the variants; same inputs and seed give the same patch.")] = 0,
    benign_weight: Annotated[float, typer.Option(min=0.01, help="Weight of the benign prompts put in the same wrapper. "
                             "Low (the default 0.2) stops more of the attack and keeps everyday false positives, "
                             "but refuses more benign requests sent in that same wrapper; 1.0 keeps those.")] = 0.2,
) -> None:
    """Patch a guard against a new jailbreak from one or a few observed examples, in about a minute.

    Finds the request inside each example, puts new restricted requests and benign prompts
    in the same wrapper, refits stage 1 on them plus the guard's replay set, and recalibrates
    so benign traffic is flagged as often as before. The new guard records its parent;
    `bastion rollback` restores it.
    """
    from bastion.patch import PatchConfig, patch_guard

    with err.status("patching") as status:
        def progress(message: str) -> None:
            status.update(message)
            err.log(message)

        patched = patch_guard(guard, jailbreak, PatchConfig(seed=seed, benign_weight=benign_weight), progress=progress)
        patched.save(output)
    lineage = patched.extra["lineage"]
    before, after = lineage["metrics"]["before"], lineage["metrics"]["after"]
    table = Table("measure", "before", "after")
    for key, name in (("pass_through", "pass-through, held-out variants"), ("benign_contrast_fpr", "flagged, benign in wrapper"),
                      ("benign_fpr", "flagged, benign calibration")):
        table.add_row(name, f"{before[key]:.3f}", f"{after[key]:.3f}")
    out.print(table)
    if "warning" in lineage:
        err.print(f"[yellow]warning:[/] {lineage['warning']}")
    if report is not None:
        from bastion.data.jsonl import atomic_writer

        with atomic_writer(report) as handle:
            json.dump(lineage, handle, indent=2)
    out.print(f"[green]saved[/] patched guard to {output} ({lineage['seconds']} s); undo with: bastion rollback {output}")


@app.command()
@friendly
def rollback(
    patched: Annotated[Path, typer.Argument(help="A guard written by `bastion patch`.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to restore the parent; in place over PATCHED when omitted.")] = None,
) -> None:
    """Restore a patched guard's parent (refused if the parent changed since the patch)."""
    from bastion.guard import Guard
    from bastion.patch import rollback as restore

    target = restore(patched, output)
    Guard.load(target)  # verifies every restored file against the parent's manifest
    out.print(f"[green]restored[/] parent guard to {target}")


# -- score / check / eval ----------------------------------------------------------------


@app.command()
@friendly
def score(
    input: Annotated[Path | None, typer.Argument(help="JSONL records (prompt or messages, optional response; or rows of `bastion audit export`); stdin when omitted.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write JSONL verdicts here (atomically); stdout when omitted.")] = None,
    guard: GuardOption = "default",
    kind: Kind = "input",
    on_error: Annotated[str, typer.Option("--on-error", help="fail: stop at the first bad line; skip: leave it out and report it.")] = "fail",
    max_chars: Annotated[int | None, typer.Option("--max-chars", help="Reject records longer than this (default BASTION_MAX_RECORD_CHARS).")] = None,
    batch_size: BatchSize = 512,
    engine: EngineOption = "local",
    ray_address: RayAddressOption = None,
    workers: WorkersOption = None,
    threads: ThreadsOption = 1,
    ship_guard: ShipGuardOption = False,
    judge: Annotated[str | None, typer.Option("--judge", help="Ask an LLM judge about the verdicts the cascade is unsure of (score in --judge-band): 'embedded' (SmolLM2), an OpenAI-compatible base URL (model from BASTION_LLM_MODEL), or a backend YAML file. Runs with --engine local.")] = None,
    judge_band: Annotated[tuple[float, float], typer.Option(help="Scores in [LOW, HIGH) go to the judge; 0.5 is the threshold.")] = (0.25, 0.75),
) -> None:
    """Score JSONL records and write one verdict per record (id, score, flagged, categories, stage)."""
    from bastion.data.jsonl import SkippedLines, read_examples, write_jsonl
    from bastion.engine import open_engine
    from bastion.guard.batch import GuardSpec, score_records

    if on_error not in ("fail", "skip"):
        raise BastionError(f"--on-error must be fail or skip, not {on_error!r}")
    kind = _kind(kind)
    spec = GuardSpec.of(guard, threads=threads, ship=ship_guard)
    skipped = SkippedLines()
    records = read_examples(input, on_error=on_error, max_chars=max_chars or Settings().max_record_chars, skipped=skipped)  # type: ignore[arg-type]
    counts = {"records": 0, "flagged": 0}

    def rows(scored: Any) -> Any:
        for example, verdict in scored:
            counts["records"] += 1
            counts["flagged"] += verdict.flagged
            yield {"id": example.id, **verdict.model_dump(exclude_none=True)}
        if not counts["records"]:  # raised inside the writer, so no empty output file is left behind
            raise RecordError(f"{input or '<stdin>'}: no records to score (empty input)")

    if judge is not None and engine != "local":
        raise BastionError("--judge asks its backend from this process: use it with --engine local")
    with ExitStack() as stack:
        runner = stack.enter_context(open_engine(engine, address=ray_address, workers=workers, threads=threads))
        advance = stack.enter_context(progress("scoring", _count_lines(input)))
        scored = score_records(runner, spec, records, kind, batch_size=batch_size, on_batch=advance)
        if judge is not None:
            scored = _judged(scored, stack, guard, judge, judge_band, kind)
        write_jsonl(rows(scored), output)
    for _, reason in skipped.lines:
        err.print(f"[yellow]skipped[/] {reason}", highlight=False)
    if output is not None:
        err.print(f"scored {counts['records']} records, {counts['flagged']} flagged, {len(skipped.lines)} skipped -> {output}")


def _judged(scored: Iterable[tuple[Example, Verdict]], stack: ExitStack, guard: str, spec: str,
            band: tuple[float, float], kind: RecordKind) -> Iterator[tuple[Example, Verdict]]:
    """Verdicts after the judge's review, asked in chunks so its backend's concurrency is used."""
    from bastion.engine import batched
    from bastion.guard import Guard, JudgedGuard
    from bastion.llm import connect, load_backend_config
    from bastion.llm.judge import Judge

    g = Guard.load(guard)
    judged = JudgedGuard(g, Judge(g.constitution, stack.enter_context(connect(load_backend_config(spec)))),
                         low=band[0], high=band[1])
    for chunk in batched(scored, 64):
        examples = [e for e, _ in chunk]
        yield from zip(examples, judged.review(examples, [v for _, v in chunk], kind), strict=True)


def _count_lines(path: Path | None) -> int | None:
    """Lines in `path` (a progress bar's total); None for stdin."""
    if path is None or not path.is_file():
        return None
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


@app.command()
@friendly
def check(
    text: Annotated[str, typer.Argument(help="A prompt to check.")],
    guard: GuardOption = "default",
    response: Annotated[str | None, typer.Option(help="Also check this response, in the context of the prompt.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
) -> None:
    """Check one prompt (and optionally a response) and print the verdict."""
    from bastion.guard import Guard

    verdict = Guard.load(guard).check(text, response=response)
    if as_json:
        out.print_json(verdict.model_dump_json())
        return
    _print_verdicts([("-", text, verdict)])


def _print_verdicts(rows: list[tuple[str, str, Any]]) -> None:
    table = Table("id", "text", "verdict", "score", "category")
    for rid, text, v in rows:
        label = "[red]FLAGGED[/]" if v.flagged else "[green]ok[/]"
        short = text if len(text) <= 70 else text[:67] + "..."
        table.add_row(rid, short, label, f"{v.score:.3f}", v.category if v.flagged else "")
    out.print(table)


@app.command("eval")
@friendly
def evaluate(
    file: Annotated[Path | None, typer.Argument(help="Labelled JSONL or CSV: records with 'label' (1/0, harmful/benign, unsafe/safe).")] = None,
    suite: Annotated[str | None, typer.Option("--suite", help="A named suite instead of FILE: seed-heldout (our held-out seeds), devpool-test, devpool-benign-test or a development-pool source (BASTION_DATA_DIR).")] = None,
    columns: Annotated[str | None, typer.Option("--columns", help="Column mapping for FILE, e.g. 'prompt=goal,label=is_harmful'.")] = None,
    guard: GuardOption = "default",
    kind: Kind = "input",
    as_json: Annotated[Path | None, typer.Option("--json", help="Also write the metrics as JSON here.")] = None,
    seed: Annotated[int, typer.Option(help="Bootstrap seed for the intervals.")] = 0,
    batch_size: BatchSize = 512,
    engine: EngineOption = "local",
    ray_address: RayAddressOption = None,
    workers: WorkersOption = None,
    threads: ThreadsOption = 1,
    ship_guard: ShipGuardOption = False,
) -> None:
    """Evaluate a guard on labelled records: AUROC, AUPRC, F1, precision, recall, FPR, TPR at 1% FPR, with 95% intervals."""
    import numpy as np

    from bastion.data.jsonl import write_jsonl
    from bastion.engine import open_engine
    from bastion.evaluation.metrics import detection_report
    from bastion.evaluation.suites import load_suite, parse_columns, read_table
    from bastion.guard.batch import GuardSpec, score_records

    if (file is None) == (suite is None):
        raise BastionError("give either FILE or --suite NAME")
    spec = GuardSpec.of(guard, threads=threads, ship=ship_guard)
    records = load_suite(suite, Settings().data_dir) if suite else read_table(file, parse_columns(columns))  # type: ignore[arg-type]
    missing = [r.id for r in records if r.label is None]
    if missing:
        raise RecordError(f"{file or suite}: {len(missing)} records have no 'label' (first: id {missing[0]})")
    kind = _kind(kind)
    with open_engine(engine, address=ray_address, workers=workers, threads=threads) as runner, \
            progress("scoring", len(records)) as advance:
        scores = np.array([v.score for _, v in score_records(runner, spec, records, kind, batch_size=batch_size, on_batch=advance)])
    report = detection_report(np.array([r.label for r in records]), scores, seed=seed)
    table = Table("metric", "value", "95% interval")
    for name in ("auroc", "auprc", "f1", "precision", "recall", "fpr", "tpr_at_1pct_fpr"):
        est = getattr(report, name)
        table.add_row(name, "n/a" if est.value is None else f"{est.value:.4f}", "" if est.low is None else f"[{est.low:.4f}, {est.high:.4f}]")
    out.print(f"{report.n} records: {report.positives} restricted, {report.negatives} benign (threshold: the guard's shipped operating point)")
    out.print(table)
    if as_json:
        write_jsonl([json.loads(report.model_dump_json())], as_json)


@app.command("stream-eval")
@friendly
def stream_eval(
    file: Annotated[Path, typer.Argument(help="Labelled JSONL with 'response' (and prompt or messages): label 1 = harmful response.")],
    guard: GuardOption = "default",
    words_per_delta: Annotated[int, typer.Option(help="Words per streamed delta.")] = 1,
    hold_back: Annotated[int, typer.Option(help="Characters the monitor keeps back after scoring.")] = 0,
) -> None:
    """Stream each response through the output monitor: detection rate, false-halt rate and where halts come."""
    import numpy as np

    from bastion.data.jsonl import read_examples
    from bastion.evaluation.metrics import wilson
    from bastion.guard import Guard
    from bastion.guard.stream import replay

    g = Guard.load(guard)
    records = list(read_examples(file))
    bad = [r.id for r in records if r.response is None or r.label is None]
    if bad:
        raise RecordError(f"{file}: {len(bad)} records lack 'response' or 'label' (first: id {bad[0]})")
    results = [replay(g, r, words_per_delta=words_per_delta, hold_back=hold_back) for r in records]
    labels = np.array([r.label for r in records])
    halted = np.array([h for h, _ in results])
    shares = [n / max(1, len(r.response or "")) for r, (h, n) in zip(records, results, strict=True) if h and r.label == 1]
    table = Table("measure", "value", "95% interval / detail")
    for name, est in (("detection rate (harmful halted)", wilson(int(halted[labels == 1].sum()), int((labels == 1).sum()))),
                      ("false-halt rate (benign halted)", wilson(int(halted[labels == 0].sum()), int((labels == 0).sum())))):
        table.add_row(name, "n/a" if est.value is None else f"{est.value:.4f}", "" if est.low is None else f"[{est.low:.4f}, {est.high:.4f}] n={est.n}")
    if shares:
        table.add_row("share of response released before a halt", f"median {np.median(shares):.2f}", f"p90 {np.quantile(shares, 0.9):.2f}")
    out.print(table)


@app.command()
@friendly
def demo(guard: GuardOption = "default") -> None:
    """Score the bundled sample prompts with a guard and print a table of verdicts."""
    from importlib import resources

    from bastion.data.jsonl import read_examples
    from bastion.data.records import render
    from bastion.guard import Guard

    g = Guard.load(guard)
    sample = Path(str(resources.files("bastion") / "demo" / "sample.jsonl"))
    records = list(read_examples(sample))
    verdicts = g.score_examples(records)
    out.print(f"guard: {g.constitution.name} constitution, target FPR {g.constitution.operating_point.target_fpr:.0%} ({sample.name})")
    _print_verdicts([(r.id or "", render(r).removeprefix("[user] "), v) for r, v in zip(records, verdicts, strict=True)])


def run() -> None:
    """Console-script entry point."""
    sys.exit(app())
