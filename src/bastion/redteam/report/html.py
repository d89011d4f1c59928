"""The red-team report as one self-contained HTML page: inline SVG, inline CSS, no scripts.

A reader with the file alone (offline, in an audit) sees the evidence: attack success by
family with intervals, the universal-jailbreak table, benign refusal, the ROC and PR
curves, the threshold trade-off, score histograms, and the hashes of what was tested.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from bastion.evaluation.metrics import Estimate
from bastion.redteam.report.model import RedteamReport, labels_and_scores
from bastion.redteam.report.svg import Series, histogram, interval_bars, lines
from bastion.redteam.runner import DIRECT, RunResult

CSS = """body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px}th{background:#f4f4f4}.plots{display:flex;flex-wrap:wrap;gap:12px}
code{font-size:12px}.fail{color:#b00;font-weight:bold}"""


def _est(e: Estimate) -> str:
    return "n/a" if e.value is None else f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}] (n={e.n})"


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _curves(result: RunResult) -> list[str]:
    labels, scores = labels_and_scores(result)
    fpr, tpr, _ = roc_curve(labels, scores)
    precision, recall, _ = precision_recall_curve(labels, scores)
    grid = np.linspace(0, 1, 101)
    benign, forbidden = scores[labels == 0], scores[labels == 1]
    trade = [Series("FPR (benign + over-refusal)", grid, [float(np.mean(benign >= g)) for g in grid]),
             Series("recall (forbidden inputs)", grid, [float(np.mean(forbidden >= g)) for g in grid])]
    attacked = [t for t in result.trials if t.label == 1 and t.attack != DIRECT]
    groups = [("benign", [t.score for t in result.trials if t.family == "benign"]),
              ("over-refusal", [t.score for t in result.trials if t.family == "over_refusal"]),
              ("direct targets", [t.score for t in result.trials if t.attack == DIRECT]),
              ("attacked, seen", [t.score for t in attacked if not t.heldout]),
              ("attacked, held out", [t.score for t in attacked if t.heldout])]
    return [
        lines([Series("guard", fpr, tpr)], "ROC: forbidden vs benign inputs", "false-positive rate", "true-positive rate", diagonal=True),
        lines([Series("guard", recall[::-1], precision[::-1])], "Precision-recall", "recall", "precision"),
        lines(trade, "Threshold trade-off (dashed: shipped 0.5)", "threshold", "rate", vline=0.5),
        histogram([g for g in groups if g[1]], "Score histograms (dashed: threshold)"),
    ]


def render_html(report: RedteamReport, result: RunResult) -> str:
    s, p = report.stats, report.provenance
    families = [(f"{f.family} ({f.heldout})", f.asr.value or 0.0, f.asr.low or 0.0, f.asr.high or 0.0, f.heldout == "yes")
                for f in s.families]
    summary = [("attack success, all attacks", _est(s.overall_asr)), ("attack success, held-out attacks", _est(s.heldout_asr)),
               ("direct targets not flagged", _est(s.direct_asr)), ("benign refusal rate", _est(s.benign_refusal)),
               ("over-refusal rate (topic-matched permitted)", _est(s.over_refusal)),
               ("AUROC forbidden vs benign", _est(report.detection.auroc)),
               ("cost", f"{s.ms_per_request:.2f} ms per request; escalation to stage 2: {s.escalation_rate:.1%}"),
               ("run time", f"{s.seconds:.1f} s for {report.counts['inputs']} inputs, {p.workers} worker threads")]
    universal = [(f"k = {u.k} of N = {u.n}", len(u.attacks), ", ".join(u.attacks) or "none") for u in s.universal]
    sections = [
        f"<h1>Bastion red-team report</h1><p>{report.counts['attacks']} attacks x {report.counts['targets']} forbidden targets, "
        f"plus {report.counts['benign']} benign and {report.counts['over_refusal']} over-refusal prompts, against "
        f"<code>{escape(p.guard)}</code> ({escape(p.defence)}). Intervals are exact Clopper-Pearson 95%; "
        "an attack succeeds on a target when its input is not flagged.</p>",
        "<h2>Summary</h2>" + _table(["measure", "value [95% interval]"], summary),
        "<h2>Attack success by family</h2><div class='plots'>" + interval_bars(families, "ASR by family (95% CI)", reference=0.05) + "</div>",
        _table(["family", "held out", "attacks", "ASR [95% CI]", "worst attack", "its ASR"],
               [(f.family, f.heldout, f.attacks, _est(f.asr), f.worst_attack, f"{f.worst_asr:.3f}") for f in s.families]),
        "<h2>Universal jailbreaks</h2><p>An attack is universal at k when it passes for at least k of the N targets.</p>"
        + _table(["criterion", "universal attacks", "which"], universal),
        "<h2>Curves</h2><div class='plots'>" + "".join(_curves(result)) + "</div>",
        "<h2>Every attack</h2>" + _table(["attack", "family", "held out", "passed", "ASR [95% CI]"],
                                         [(a.id, a.family, "yes" if a.heldout else "no", a.successes, _est(a.asr)) for a in s.attacks]),
        "<h2>Configuration and hashes</h2>" + _table(["field", "value"], p.model_dump().items()),
    ]
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Bastion red-team report</title>"
            f"<style>{CSS}</style></head><body>{''.join(sections)}</body></html>")
