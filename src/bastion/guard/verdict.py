"""The one Verdict model used everywhere: Python API, JSONL output, HTTP, audit, reports."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Verdict(BaseModel):
    """A guard's decision about one input, output or exchange.

    Scores are calibrated so that 0.5 is each one's threshold at the guard's target
    false-positive rate: `flagged` is true exactly when `score` (restricted in any way) is
    at least 0.5. Category scores say which rule is most likely at stake.
    """

    model_config = ConfigDict(frozen=True)

    score: float = Field(ge=0.0, le=1.0, description="Overall score; flagged at >= 0.5.")
    flagged: bool
    category: str | None = Field(default=None, description="Most likely restricted category.")
    categories: dict[str, float] = Field(default_factory=dict, description="Category id -> score.")
    stage: str = Field(description="The cascade stage that decided.")
    halted: bool | None = Field(default=None, description="Streams only: the response was stopped.")
    position: int | None = Field(default=None, description="Streams only: characters released.")
    judge_error: str | None = Field(default=None, description="The LLM judge was asked but its answer could not be "
                                    "used (unparseable or failed); the verdict is the cascade's.")
