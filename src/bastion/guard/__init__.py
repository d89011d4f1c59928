"""The runtime guard and its verdicts."""

from bastion.guard.guard import Guard
from bastion.guard.judged import JudgedGuard
from bastion.guard.verdict import Verdict

__all__ = ["Guard", "JudgedGuard", "Verdict"]
