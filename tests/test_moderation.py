"""Verdicts mapped onto OpenAI's moderation categories."""

from __future__ import annotations

from bastion.constitution import load
from bastion.guard import Verdict
from bastion.serve.moderation import OPENAI_CATEGORIES, moderation_result, openai_mapping


def test_mapping_reads_comma_separated_external_codes():
    mapping = openai_mapping(load("general"))
    assert set(mapping) == set(OPENAI_CATEGORIES)
    assert mapping["self-harm/intent"] == ["self_harm"]
    assert set(mapping["harassment"]) == {"hate", "sex_crimes"}
    assert mapping["violence/graphic"] == []


def test_result_takes_the_highest_mapped_score_and_keeps_constitution_ids():
    mapping = openai_mapping(load("general"))
    verdict = Verdict(score=0.8, flagged=True, category="hate", stage="stage1",
                      categories={"hate": 0.8, "sex_crimes": 0.6, "violent_crimes": 0.2})
    result = moderation_result(verdict, mapping)
    assert result["category_scores"]["harassment"] == 0.8
    assert result["categories"]["harassment"] is True and result["categories"]["violence"] is False
    assert result["categories"]["hate"] is True and result["category_scores"]["violent_crimes"] == 0.2
    unflagged = moderation_result(verdict.model_copy(update={"flagged": False, "score": 0.3}), mapping)
    assert not any(unflagged["categories"].values())
