"""Numbers written as words ("five", "twelve", "twice") as well as digits: notes use both."""

from __future__ import annotations

import re

WORDS = {
    "a": 1, "an": 1, "one": 1, "single": 1, "once": 1, "two": 2, "twice": 2, "both": 2, "three": 3, "thrice": 3,
    "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "ninety": 90,
    "dozen": 12, "half a dozen": 6, "half-dozen": 6,  # "about a dozen injections over 4 years"
    "several": None, "many": None, "multiple": None, "few": None,
}
NUMBER = r"(?:\d+(?:\.\d+)?|" + "|".join(sorted((w for w in WORDS if w not in ("a", "an")), key=len, reverse=True)) + ")"
_NUMBER_RE = re.compile(rf"^{NUMBER}$", re.I)


def to_number(token: str) -> float | None:
    """A digit string or number word as a number; None for vague words ("several") or anything else."""
    t = token.strip().lower()
    if not t:
        return None
    if t[0].isdigit():
        try:
            return float(t)
        except ValueError:
            return None
    return float(WORDS[t]) if WORDS.get(t) is not None else None


def is_number(token: str) -> bool:
    return bool(_NUMBER_RE.match(token.strip()))
