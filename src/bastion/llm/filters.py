"""The non-actionable filter: generated restricted-category text with step-level specifics is dropped.

The generation prompts already ask for non-actionable replies; a small model ignores such
instructions often, so this filter is the guarantee. It is deliberately blunt: anything that
looks like a procedure (numbered or bulleted steps, "Step 2"), a measured quantity, or code
is dropped, not repaired, since a classifier loses nothing by missing one training record.
"""

from __future__ import annotations

import re

_STEPS = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*•]|step\s+\d+\b)", re.IGNORECASE | re.MULTILINE)
_INLINE_STEPS = re.compile(r"\b(?:step\s*\d+|first(?:ly)?,.*\bthen\b.*\bfinally\b)", re.IGNORECASE | re.DOTALL)
_UNITS = (r"mg|g|kg|grams?|kilograms?|ml|millilit(?:er|re)s?|l|lit(?:er|re)s?|oz|ounces?|lbs?|pounds?|cups?|tbsp|tsp|"
          r"tablespoons?|teaspoons?|°\s*[cf]|degrees?|mol|mmol|molar|m|%|percent|ppm|volts?|v|watts?|kw|"
          r"minutes?|mins?|hours?|hrs?|seconds?|secs?")
_QUANTITY = re.compile(rf"\b\d+(?:[.,]\d+)?\s*(?:{_UNITS})(?![a-z])", re.IGNORECASE)
_CODE = re.compile(r"```|^\s{4,}\S.*[;{}()=]\s*$|\b(?:import|def|function|sudo|curl|wget)\s+\S", re.MULTILINE)
RULES = (("steps", _STEPS), ("steps", _INLINE_STEPS), ("quantity", _QUANTITY), ("code", _CODE))


def actionable(text: str) -> str | None:
    """Why `text` looks actionable ('steps', 'quantity' or 'code'), or None when it does not."""
    for reason, pattern in RULES:
        if pattern.search(text):
            return reason
    return None
