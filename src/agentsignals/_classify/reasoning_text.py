"""Cheap counts over reasoning text, computed where the text is (in the agent) so the features
work with content capture off: plan steps and self-corrections.

Regex heuristics, as the seed inventory says: soft signals, not ground truth.
"""

from __future__ import annotations

import re

# "1. Read the file", "2) run tests", "- fix", "* check", "Step 3:" at the start of a line.
_PLAN_STEP = re.compile(r"(?im)^\s*(?:\d{1,2}[.)]\s+\S|[-*•]\s+\S|step\s+\d+\s*[:.)-])")
_SELF_CORRECTION = re.compile(
    r"(?i)\b(?:actually|wait|hmm+|on second thought|i was wrong|that(?:'s| is) (?:wrong|not right)"
    r"|that (?:won't|will not|doesn't|does not) work"
    r"|let me (?:reconsider|rethink|try (?:again|another))"
    r"|scratch that|my mistake|instead,? i(?:'ll| will| should))\b"
)


def plan_steps(text: str) -> int:
    """Numbered or bulleted plan steps (lines starting with `1.`, `2)`, `-`, `*`, `Step 3:`)."""
    return len(_PLAN_STEP.findall(text))


def self_corrections(text: str) -> int:
    """Phrases where the agent revisits or abandons an approach."""
    return len(_SELF_CORRECTION.findall(text))
