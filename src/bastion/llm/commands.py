"""`bastion generate`: the CLI over the LLM data pipeline (registered by bastion.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bastion.console import friendly, out, progress
from bastion.engine.options import EngineOption, RayAddressOption, WorkersOption
from bastion.errors import ConfigError

BackendOption = Annotated[str | None, typer.Option(
    "--backend", help="The LLM: 'embedded' (SmolLM2 on llama.cpp, for trying things out), an OpenAI-compatible base URL "
                      "(vLLM, Ollama, llama.cpp, a hosted API; e.g. http://localhost:11434/v1), or a backend YAML file. "
                      "Default: BASTION_LLM_BASE_URL, else embedded.")]
ModelOption = Annotated[str | None, typer.Option("--model", help="Model name at the backend (default: BASTION_LLM_MODEL).")]


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@friendly
def generate(
    output: Annotated[Path, typer.Option("--output", "-o", help="Input records go here (JSONL, appended); responses to OUT.responses.jsonl.")],
    constitution: Annotated[str, typer.Option("--constitution", "-c", help="Bundled name (general, cbrn) or YAML file.")] = "general",
    backend: BackendOption = None,
    model: ModelOption = None,
    queries: Annotated[int, typer.Option("--queries", "-n", help="Queries per category (each gets a response, a paraphrase and a translation).")] = 20,
    stages: Annotated[str | None, typer.Option(help="Stages after 'query', comma-separated (default all): response,paraphrase,translate,transform.")] = None,
    languages: Annotated[str | None, typer.Option(help="Languages for translations, comma-separated (default Spanish,French,German,Portuguese).")] = None,
    exclude: Annotated[list[Path], typer.Option("--exclude", help="Evaluation JSONL files: drop generated records near-duplicate to them (leak check).")] = [],  # noqa: B006
    skip_category: Annotated[list[str], typer.Option("--skip-category", help="Category id to leave out (repeatable).")] = [],  # noqa: B006
    max_tokens: Annotated[int, typer.Option(help="Longest answer per request, in tokens.")] = 160,
    concurrency: Annotated[int | None, typer.Option(help="Requests in flight at once (default: the backend config's, 4).")] = None,
    cache: Annotated[Path | None, typer.Option(help="Response cache directory (default .bastion-cache/llm; reruns are free).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for personas, formats, languages, transforms and sampling.")] = 0,
    engine: EngineOption = "local",
    ray_address: RayAddressOption = None,
    workers: WorkersOption = None,
) -> None:
    """Generate labelled training data from a constitution with an LLM (the Constitutional Classifiers pipeline).

    For every restricted and permitted category: queries in varied personas, formats and
    languages, then a response, a paraphrase and a translation of each, then transformed
    (disguised) copies. Records carry provenance (stage, model, prompt-template sha256).
    Interrupt it any time: rerunning the same command continues where it stopped, and
    answers already received come from the cache. Duplicates, near-duplicates of the
    red-team targets and --exclude files, and restricted-category text with step-level
    specifics are dropped. Train on the result with
    `bastion train --data OUT.jsonl --responses OUT.responses.jsonl`.

    With --engine ray, workers generate parts of the plan (OUT.parts/, on a filesystem every
    worker sees) and the parts are merged into OUT in order.
    """
    from bastion.constitution import load
    from bastion.data.jsonl import read_examples
    from bastion.llm import GenerateConfig, Generator, connect, load_backend_config, plan, requests_per_job, responses_path

    c = load(constitution)
    options = {k: v for k, v in {"stages": _csv(stages), "languages": _csv(languages)}.items() if v is not None}
    unknown = [s for s in options.get("stages", []) if s not in ("response", "paraphrase", "translate", "transform")]
    if unknown:
        raise ConfigError(f"--stages: unknown stage(s) {', '.join(unknown)}; choose from response, paraphrase, translate, transform")
    config = GenerateConfig(queries_per_category=queries, max_tokens=max_tokens, seed=seed, skip_categories=skip_category, **options)
    references = [e.last_user_text() for path in exclude for e in read_examples(path)] + _target_texts(c.name)
    settings = load_backend_config(backend, model=model, concurrency=concurrency, cache_dir=cache)
    total = len(plan(c, config)) * requests_per_job(config)
    if engine == "local":
        with connect(settings) as llm, progress(f"generating with {llm.model}", total) as advance:
            result = Generator(c, llm, output, config, references=references, progress=lambda _: advance(1)).run()
    else:
        from bastion.engine import open_engine
        from bastion.llm.sharded import generate_on

        with open_engine(engine, address=ray_address, workers=workers) as runner, \
                progress(f"generating on {engine}", total) as advance:
            result = generate_on(runner, c, settings, output, config, references, progress=advance)
    _print_result(result)
    out.print(f"[green]wrote[/] {output} and {responses_path(output)}")


def _target_texts(constitution: str) -> list[str]:
    """The bundled red-team targets of a constitution (every suite), the leak check's default references."""
    from bastion.redteam.targets import bundled_targets, load_targets

    try:
        targets = load_targets(bundled_targets(constitution))
    except ConfigError:
        return []
    return [t.text for t in targets.forbidden] + [e.last_user_text() for e in (*targets.benign, *targets.over_refusal)]


def _print_result(result: object) -> None:
    from bastion.llm import GenerateResult

    assert isinstance(result, GenerateResult)
    table = Table("stage", "written")
    for stage, count in sorted(result.written.items()):
        table.add_row(stage, str(count))
    out.print(table)
    usage = result.usage
    dropped = ", ".join(f"{n} {reason}" for reason, n in sorted(result.dropped.items())) or "none"
    out.print(f"already there: {result.resumed}; dropped: {dropped}")
    out.print(f"{usage['requests']:.0f} requests, {usage['cache_hits']:.0f} cache hits ({usage['hit_rate']:.0%}), "
              f"{usage['prompt_tokens']:.0f}+{usage['completion_tokens']:.0f} tokens, ${usage['cost_usd']:.4f}, "
              f"{result.seconds:.1f} s")
