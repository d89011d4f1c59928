"""Verdicts in the shape of OpenAI's `/v1/moderations` response.

Each restricted category of the constitution may name OpenAI moderation categories in
`external.openai_moderation` (comma-separated). A mapped OpenAI category takes the highest
score of the constitution categories that map to it; unmapped ones stay false at 0. The
constitution's own ids are reported beside them, so nothing the guard knows is lost.
"""

from __future__ import annotations

from typing import Any

from bastion.constitution import Constitution
from bastion.guard import Verdict

OPENAI_CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence",
    "violence/graphic",
)


def openai_mapping(constitution: Constitution) -> dict[str, list[str]]:
    """OpenAI category -> the constitution categories that map to it."""
    mapping: dict[str, list[str]] = {key: [] for key in OPENAI_CATEGORIES}
    for category in constitution.restricted:
        for key in category.external.get("openai_moderation", "").split(","):
            if key.strip() in mapping:
                mapping[key.strip()].append(category.id)
    return mapping


def moderation_result(verdict: Verdict, mapping: dict[str, list[str]]) -> dict[str, Any]:
    """One entry of `results`: OpenAI's keys first, then the constitution's ids, plus Bastion's verdict."""
    scores = {key: max((verdict.categories.get(c, 0.0) for c in ids), default=0.0) for key, ids in mapping.items()}
    scores.update(verdict.categories)
    flagged = {key: verdict.flagged and score >= 0.5 for key, score in scores.items()}
    return {"flagged": verdict.flagged, "categories": flagged, "category_scores": scores,
            "category_applied_input_types": {key: ["text"] for key in scores},
            "bastion": verdict.model_dump()}
