"""Red-team reports: the JSON model and the self-contained HTML page."""

from bastion.redteam.report.html import render_html
from bastion.redteam.report.model import RedteamReport, build_report

__all__ = ["RedteamReport", "build_report", "render_html"]
