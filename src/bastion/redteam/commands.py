"""`bastion redteam`: the CLI over the red-team library (registered by bastion.cli)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from bastion.config import Settings
from bastion.console import err, friendly, out, progress
from bastion.engine.options import EngineOption, RayAddressOption, ShipGuardOption, ThreadsOption, WorkersOption
from bastion.errors import BastionError, ExitCode

if TYPE_CHECKING:
    from bastion.guard import Guard
    from bastion.llm import Backend
    from bastion.redteam.attacks import Attack
    from bastion.redteam.defence import Defence
    from bastion.redteam.report import AttackerSummary, RedteamReport
    from bastion.redteam.targets import TargetSet
BACKEND_HELP = "an LLM backend: 'embedded' (SmolLM2), an OpenAI-compatible base URL, or a backend YAML file (model: BASTION_LLM_MODEL or the file)"


@friendly
def redteam(
    guard: Annotated[str, typer.Option("--guard", "-g", help="Guard artifact directory, or 'default' for the bundled guard.")] = "default",
    targets: Annotated[Path | None, typer.Option("--targets", help="Target file (YAML); default: the bundled targets of the guard's constitution.")] = None,
    attacks: Annotated[str | None, typer.Option("--attacks", help="Comma-separated attack ids and/or families (default: all).")] = None,
    as_json: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON here.")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write the self-contained HTML report here.")] = None,
    fail_if: Annotated[list[str], typer.Option("--fail-if", help="Gate such as 'asr>0.05' (repeatable; several per value, space-separated). Exit 1 when one holds.")] = [],  # noqa: B006
    workers: WorkersOption = None,
    wild: Annotated[bool, typer.Option(help="Add held-out in-the-wild templates from BASTION_DATA_DIR when present.")] = True,
    list_attacks: Annotated[bool, typer.Option("--list", help="List the selected attacks and exit.")] = False,
    judge: Annotated[str | None, typer.Option("--judge", help=f"Red-team end to end and grade with an LLM judge, {BACKEND_HELP}. Inputs that pass the guard go to --upstream; answers the output classifier lets through are graded against the constitution. One request per input: narrow with --attacks/--targets.")] = None,
    upstream: Annotated[str | None, typer.Option("--upstream", help="With --judge: the guarded model whose answers are graded (default: the judge's backend).")] = None,
    attacker: Annotated[str | None, typer.Option("--attacker", help=f"Add the PAIR-style automated attacker, {BACKEND_HELP}: it rewrites each target question from the defence's verdicts; its results are the family 'pair'.")] = None,
    attacker_rounds: Annotated[int, typer.Option(help="Rewrites the attacker may try per target.")] = 5,
    engine: EngineOption = "local",
    ray_address: RayAddressOption = None,
    threads: ThreadsOption = 1,
    ship_guard: ShipGuardOption = False,
) -> None:
    """Run every attack against every target question: attack success with exact intervals, universal jailbreaks, benign refusal.

    Classifier level by default (an attack succeeds when the input classifier does not flag
    it); with --judge, end to end through a guarded model, graded by an LLM judge.
    """
    from bastion.engine import open_engine
    from bastion.guard import Guard
    from bastion.guard.batch import GuardSpec
    from bastion.redteam import InputClassifierDefence, bundled_targets, library, load_targets, run
    from bastion.redteam.defence import shared
    from bastion.redteam.gates import failed, parse_gates
    from bastion.redteam.report import build_report, render_html
    from bastion.redteam.runner import plan_size
    from bastion.redteam.statistics import GATE_METRICS, gate_values

    gates = parse_gates(fail_if, GATE_METRICS)
    chosen = _selected(library(Settings().data_dir if wild else None), attacks, attacker is not None)
    if list_attacks:
        _print_attacks(chosen)
        return
    g = Guard.load(guard)
    target_set = load_targets(targets or bundled_targets(g.constitution.name))
    if target_set.constitution != g.constitution.name:
        err.print(f"[yellow]targets are written for {target_set.constitution!r}, the guard enforces {g.constitution.name!r}[/]")
    if judge is not None and engine != "local":
        raise BastionError("--judge holds one connection to its backends in this process: use it with --engine local")
    with ExitStack() as stack:
        backends = _Backends(stack)
        defence: Defence = InputClassifierDefence(g)
        factory: Callable[[], Defence] = InputClassifierDefence.loader(GuardSpec.of(guard, threads=threads, ship=ship_guard))
        if judge is not None:
            defence = _end_to_end(g, backends.get(upstream or judge), backends.get(judge))
            factory = shared(defence)
        summary = None
        if attacker is not None:
            pair, summary = _pair(backends.get(attacker), defence, target_set, attacker_rounds)
            chosen = [*chosen, pair]
        runner = stack.enter_context(open_engine(engine, address=ray_address, workers=workers, threads=threads))
        advance = stack.enter_context(progress("red team", plan_size(chosen, target_set)))
        result = run(chosen, target_set, factory, engine=runner, on_batch=advance)
        built = build_report(result, g, guard, target_set, attacks, attacker=summary,
                             judge=backends.get(judge).model if judge else None,
                             upstream=backends.get(upstream or judge).model if judge else None)
    _print_summary(built)
    if as_json:
        as_json.write_text(built.model_dump_json(indent=2), encoding="utf-8")
    if report:
        report.write_text(render_html(built, result), encoding="utf-8")
    values = gate_values(built.stats)
    failures = failed(gates, values)
    for gate in failures:
        err.print(f"[bold red]gate failed:[/] {gate} (value {values[gate.metric]:.4f})")
    if failures:
        raise typer.Exit(int(ExitCode.FAILED))


def _selected(attacks: Sequence[Attack], spec: str | None, with_attacker: bool) -> list[Attack]:
    """`--attacks` as `select` reads it; with --attacker, the name 'pair' (the attacker's family) is allowed too,
    and `--attacks pair` runs the attacker alone."""
    from bastion.llm.attacker import FAMILY
    from bastion.redteam import select

    names = [n.strip() for n in (spec or "").split(",") if n.strip()]
    if not with_attacker or FAMILY not in names:
        return select(attacks, spec)
    rest = [n for n in names if n != FAMILY]
    return select(attacks, ",".join(rest)) if rest else []


class _Backends:
    """One connection per distinct backend spec (so --judge embedded --attacker embedded start one model)."""

    def __init__(self, stack: ExitStack) -> None:
        self.stack, self.open = stack, {}

    def get(self, spec: str) -> Backend:
        from bastion.llm import connect, load_backend_config

        if spec not in self.open:
            self.open[spec] = self.stack.enter_context(connect(load_backend_config(spec)))
        return self.open[spec]


def _end_to_end(guard: Guard, upstream: Backend, judge: Backend) -> Defence:
    from bastion.llm.judge import Judge
    from bastion.redteam.defence import EndToEndDefence

    return EndToEndDefence(guard, upstream, Judge(guard.constitution, judge))


def _pair(backend: Backend, defence: Defence, targets: TargetSet, rounds: int) -> tuple[Attack, AttackerSummary]:
    """Run the automated attacker over every target; its attack and summary."""
    from bastion.llm.attacker import PairAttacker, as_attack
    from bastion.redteam.report import AttackerSummary

    with progress(f"attacker ({backend.model})", len(targets.forbidden)) as advance:
        outcomes = PairAttacker(backend, defence, rounds=rounds).run(targets.forbidden, lambda: advance(1))
    used = [o.rounds for o in outcomes if o.success]
    return as_attack(outcomes), AttackerSummary(model=backend.model, max_rounds=rounds, targets=len(outcomes),
                                                successes=len(used), mean_rounds_to_success=sum(used) / len(used) if used else None)


def _print_attacks(attacks: Sequence[Attack]) -> None:
    table = Table("id", "family", "held out", "what it does")
    for a in attacks:
        table.add_row(a.id, a.family, "yes" if a.heldout else "no", a.doc)
    out.print(table)
    out.print(f"{len(attacks)} attacks in {len({a.family for a in attacks})} families")


def _print_summary(report: RedteamReport) -> None:
    s = report.stats
    table = Table("family", "held out", "attacks", "ASR", "95% CI (Clopper-Pearson)")
    for f in s.families:
        table.add_row(f.family, f.heldout, str(f.attacks), f"{f.asr.value:.3f}", f"[{f.asr.low:.3f}, {f.asr.high:.3f}]")
    out.print(table)
    for name, est in (("all attacks", s.overall_asr), ("held-out attacks", s.heldout_asr), ("direct targets", s.direct_asr),
                      ("benign refusal", s.benign_refusal), ("over-refusal", s.over_refusal)):
        out.print(f"{name:18s} {est}")
    for row in s.universal:
        out.print(f"universal at k={row.k}/{row.n}: {len(row.attacks)} {', '.join(row.attacks[:5])}")
    out.print(f"{s.ms_per_request:.2f} ms/request, escalation {s.escalation_rate:.1%}, {s.seconds:.1f} s")
    if report.attacker is not None:
        a = report.attacker
        out.print(f"attacker {a.model}: {a.successes}/{a.targets} targets passed within {a.max_rounds} rounds")
    if s.judge_errors:
        err.print(f"[yellow]{s.judge_errors} judge answers could not be parsed; the output classifier's verdict stood[/]")
