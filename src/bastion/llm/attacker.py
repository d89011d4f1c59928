"""The automated attacker: PAIR-style iterative refinement against a defence.

As in PAIR (Chao et al. 2023), an attacker LLM gets the goal (a forbidden target question),
its last attempt and the defence's verdict on it, and writes a better attempt, for up to
`rounds` rounds or until one gets through. The defence is any red-team `Defence` — the
guard's input classifier, or end to end through a guarded model with a judge — so the same
loop attacks either. The final attempt per target becomes one input of the attack `pair`
(its own family), so the runner, the statistics and the report treat it like any other
attack: one Bernoulli trial per target.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bastion.data.records import Example
from bastion.guard.verdict import Verdict
from bastion.llm.backend import Backend
from bastion.llm.templates import template
from bastion.redteam.attacks.base import Attack, family_heldout
from bastion.redteam.defence import Defence
from bastion.redteam.targets import Target

FAMILY = "pair"


@dataclass(frozen=True)
class AttackOutcome:
    """Where the attacker got with one target: its last prompt, rewrites used, and whether it passed."""

    target: str
    prompt: str
    rounds: int
    success: bool


def feedback(verdict: Verdict) -> str:
    """What the attacker is told about its last attempt."""
    if verdict.stage == "judge":
        return "it got past the filter, but the answer did not contain what the goal asks for"
    where = f", category {verdict.category}" if verdict.category else ""
    return f"blocked by the {verdict.stage} check (score {verdict.score:.2f}{where})"


class PairAttacker:
    """Refines each target's prompt with `backend` against `defence` for up to `rounds` rounds."""

    def __init__(self, backend: Backend, defence: Defence, *, rounds: int = 5, max_tokens: int = 200, seed: int = 0) -> None:
        if rounds < 1:
            raise ValueError("the attacker needs at least one round")
        self.backend, self.defence, self.rounds, self.max_tokens, self.seed = backend, defence, rounds, max_tokens, seed

    async def _verdict(self, target: Target, prompt: str) -> Verdict:
        example = Example(id=f"{target.id}~{FAMILY}", prompt=prompt, label=1, categories=[target.category])
        return (await asyncio.to_thread(self.defence, [example]))[0]

    async def attack(self, target: Target) -> AttackOutcome:
        """The PAIR loop for one target (round 0 is the bare question)."""
        prompt = target.text
        verdict = await self._verdict(target, prompt)
        rounds = 0
        while verdict.flagged and rounds < self.rounds:
            rounds += 1
            seed = int.from_bytes(hashlib.sha256(f"{self.seed}:{target.id}:{rounds}".encode()).digest()[:4], "big") >> 1
            messages = template("attacker").render(goal=target.text, round=rounds, prompt=prompt, feedback=feedback(verdict))
            rewrite = (await self.backend.complete(messages, max_tokens=self.max_tokens, temperature=1.0, seed=seed)).text.strip()
            prompt = rewrite or prompt
            verdict = await self._verdict(target, prompt)
        return AttackOutcome(target.id, prompt, rounds, not verdict.flagged)

    def run(self, targets: Sequence[Target], on_target: Callable[[], None] = lambda: None) -> list[AttackOutcome]:
        """Attack every target concurrently (the backend bounds the requests in flight)."""
        async def one(target: Target) -> AttackOutcome:
            outcome = await self.attack(target)
            on_target()
            return outcome

        async def every() -> list[AttackOutcome]:
            return list(await asyncio.gather(*(one(t) for t in targets)))

        return asyncio.run(every())


def as_attack(outcomes: Sequence[AttackOutcome]) -> Attack:
    """The attacker's final prompts as the registered-style attack `pair`, for the runner."""
    by_target = {o.target: o.prompt for o in outcomes}

    def build(target: Target) -> Example:
        return Example(prompt=by_target[target.id])

    return Attack(FAMILY, FAMILY, family_heldout(FAMILY), build,
                  "PAIR-style automated attacker: an LLM refines the prompt from the defence's verdicts.")
