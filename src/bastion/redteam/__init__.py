"""Red teaming at the classifier level: attacks x targets -> verdicts -> statistics -> report.

The parts are separate on purpose (as in inspect_ai): `targets` say what to ask, `attacks`
how to disguise it, `defence` what it is run against, `runner` does the work, `statistics`
turns trials into rates with exact intervals, and `report` presents them.
"""

from bastion.redteam.attacks import ATTACKS, Attack, library, select
from bastion.redteam.defence import Defence, InputClassifierDefence
from bastion.redteam.runner import RunResult, Trial, run
from bastion.redteam.statistics import RedteamStats, summarise
from bastion.redteam.targets import Target, TargetSet, bundled_targets, load_targets

__all__ = [
    "ATTACKS", "Attack", "Defence", "InputClassifierDefence", "RedteamStats", "RunResult", "Target", "TargetSet", "Trial",
    "bundled_targets", "library", "load_targets", "run", "select", "summarise",
]
