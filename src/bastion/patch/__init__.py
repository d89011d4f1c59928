"""Rapid response: patch a guard against a new jailbreak from one to a few observed examples.

    observed jailbreak -> wrapper (where the request sits) -> proliferations (new targets and
    benign contrasts under the same wrapper, plus transform combinations) -> stage 1 refit,
    anchored to the parent, on the artifact's replay set + proliferations -> thresholds
    recalibrated to the parent's benign rate -> a new artifact that records its lineage.
"""

from bastion.patch.lineage import rollback
from bastion.patch.patcher import PatchConfig, patch_guard
from bastion.patch.proliferate import proliferate
from bastion.patch.replay import build_replay, load_replay
from bastion.patch.wrapper import PLACEHOLDER, Wrapper, infer_wrappers, read_jailbreaks

__all__ = ["PLACEHOLDER", "PatchConfig", "Wrapper", "build_replay", "infer_wrappers", "load_replay", "patch_guard",
           "proliferate", "read_jailbreaks", "rollback"]
