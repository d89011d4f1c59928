"""Red-team reports: the JSON model and the self-contained HTML page."""

from bastion.redteam.report.html import render_html
from bastion.redteam.report.model import AttackerSummary, RedteamReport, build_report

__all__ = ["AttackerSummary", "RedteamReport", "build_report", "render_html"]
