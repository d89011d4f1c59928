"""`bastion redteam`: the CLI over the red-team library (registered by bastion.cli)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from bastion.config import Settings
from bastion.console import err, friendly, out, progress
from bastion.engine.options import EngineOption, RayAddressOption, ShipGuardOption, ThreadsOption, WorkersOption
from bastion.errors import ExitCode

if TYPE_CHECKING:
    from bastion.redteam.attacks import Attack
    from bastion.redteam.report import RedteamReport


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
    engine: EngineOption = "local",
    ray_address: RayAddressOption = None,
    threads: ThreadsOption = 1,
    ship_guard: ShipGuardOption = False,
) -> None:
    """Run every attack against every target question: attack success with exact intervals, universal jailbreaks, benign refusal."""
    from bastion.engine import open_engine
    from bastion.guard import Guard
    from bastion.guard.batch import GuardSpec
    from bastion.redteam import InputClassifierDefence, bundled_targets, library, load_targets, run, select
    from bastion.redteam.gates import failed, parse_gates
    from bastion.redteam.report import build_report, render_html
    from bastion.redteam.runner import plan_size
    from bastion.redteam.statistics import GATE_METRICS, gate_values

    gates = parse_gates(fail_if, GATE_METRICS)
    chosen = select(library(Settings().data_dir if wild else None), attacks)
    if list_attacks:
        _print_attacks(chosen)
        return
    g = Guard.load(guard)
    target_set = load_targets(targets or bundled_targets(g.constitution.name))
    if target_set.constitution != g.constitution.name:
        err.print(f"[yellow]targets are written for {target_set.constitution!r}, the guard enforces {g.constitution.name!r}[/]")
    defence = InputClassifierDefence.loader(GuardSpec.of(guard, threads=threads, ship=ship_guard))
    with open_engine(engine, address=ray_address, workers=workers, threads=threads) as runner, \
            progress("red team", plan_size(chosen, target_set)) as advance:
        result = run(chosen, target_set, defence, engine=runner, on_batch=advance)
    built = build_report(result, g, guard, target_set, attacks)
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
