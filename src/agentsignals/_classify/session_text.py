"""Cheap readings of the text of an interactive session, computed where the text is (the
importers, the live SDK) so the product-session features work with content capture off.

Lexicons are the signal inventory's own phrase lists (regex heuristics, as it says: soft
signals, not ground truth). Words are whitespace-separated words: a length that needs no model
tokenizer, the same for every agent and model.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "CORRECTION",
    "POSITIVE",
    "REJECTION",
    "assumptions",
    "confirmation_requests",
    "hedges",
    "markers",
    "plan_items",
    "words",
]

CORRECTION: Final = "correction"
POSITIVE: Final = "positive"
REJECTION: Final = "rejection"

# dynamics.correction_ratio: "no", "that's not", "wrong", "undo", "revert", "actually", "wait",
# "stop" (the inventory's list, as whole words, any case; straight or curly apostrophe).
_CORRECTION: Final = re.compile(
    r"(?i)\b(?:no|that[’']?s not|that is not|wrong|undo|revert|actually|wait|stop)\b"
)
# session_outcome `accepted`: "said thanks, closed with a positive signal".
_POSITIVE: Final = re.compile(
    r"(?i)\b(?:thanks|thank you|thx|perfect|great(?: job| work)?|awesome|excellent"
    r"|looks good|lgtm|works now|that works|it works|well done|nice work|ship it)\b"
)
# session_outcome `explicitly_rejected`: "undo everything", reverting all, dismissing the work.
_REJECTION: Final = re.compile(
    r"(?i)\b(?:undo (?:everything|all(?: of it| of that| the changes| your changes)?)"
    r"|revert (?:everything|all(?: of it| the changes| your changes)?|the changes|your changes)"
    r"|discard (?:everything|all|the changes|your changes)"
    r"|throw (?:it|this|that|everything) away|start over|forget (?:it|this|everything))\b"
)
# user.agent_hedging_rate: "I think", "might be", "probably", "I'm not sure".
_HEDGE: Final = re.compile(r"(?i)\b(?:i think|might be|probably|i[’']?m not sure|i am not sure)\b")
# user.confirmation_requests: "Should I ...", "Do you want me to ..." (and their close variants).
_CONFIRM: Final = re.compile(
    r"(?i)\b(?:should i|shall i|do you want me to|would you like me to|want me to)\b[^?\n]*\?"
)
# anticipation.assumption_count: "I'll assume", "assuming", "I think you mean", "probably
# wants", "likely refers to".
_ASSUME: Final = re.compile(
    r"(?i)\b(?:i[’']?ll assume|i will assume|assuming|i think you mean|probably wants"
    r"|likely refers? to)\b"
)
# A plan item: a numbered or bulleted line ("1. read x", "2) fix", "- run", "Step 3: ...").
_PLAN_ITEM: Final = re.compile(
    r"(?im)^[ \t]*(?:\d{1,2}[.)]|[-*•]|step\s+\d+\s*[:.)-])[ \t]+(\S.*?)[ \t]*$"
)


def words(text: str) -> int:
    """Whitespace-separated words."""
    return len(text.split())


def markers(text: str) -> list[str]:
    """The lexicons the text matches, in the order correction, positive, rejection."""
    out: list[str] = []
    if _CORRECTION.search(text):
        out.append(CORRECTION)
    if _POSITIVE.search(text):
        out.append(POSITIVE)
    if _REJECTION.search(text):
        out.append(REJECTION)
    return out


def hedges(text: str) -> int:
    """Hedging phrases."""
    return len(_HEDGE.findall(text))


def confirmation_requests(text: str) -> int:
    """Questions asking the user's go-ahead ("Should I ...?", "Do you want me to ...?")."""
    return len(_CONFIRM.findall(text))


def assumptions(text: str) -> int:
    """Assumption-signalling phrases."""
    return len(_ASSUME.findall(text))


def plan_items(text: str) -> list[str]:
    """The numbered or bulleted lines of a plan, in order, without their markers."""
    return [m.group(1) for m in _PLAN_ITEM.finditer(text)]
