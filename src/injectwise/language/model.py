"""What the language layer returns: sentences and concept mentions with their ConText modifiers."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True, frozen=True)
class Sentence:
    start: int
    end: int
    text: str


@dataclass(slots=True)
class Mention:
    """One concept named at [start, end) of the analysed text, with what the context says about it."""

    concept: str
    start: int
    end: int
    sentence: int
    matched: str
    negated: bool = False
    possible: bool = False
    historical: bool = False
    hypothetical: bool = False
    family: bool = False
    side: str | None = None
    site: str | None = None
    historical_counts: bool = False  # from the concept: a past mention is still a present fact
    triggers: tuple[str, ...] = ()  # the trigger words that set the modifiers, for explanations

    @property
    def asserted(self) -> bool:
        """Present for the patient now: possible counts (safety), negated/hypothetical/family never."""
        if self.negated or self.hypothetical or self.family:
            return False
        return self.historical_counts or not self.historical


@dataclass(slots=True)
class Analysis:
    text: str
    sentences: list[Sentence] = field(default_factory=list)
    mentions: list[Mention] = field(default_factory=list)
    truncated: bool = False  # the text was longer than the configured cap; the rest was not read

    def asserted(self) -> list[Mention]:
        return [m for m in self.mentions if m.asserted]

    def concepts(self) -> frozenset[str]:
        """Concepts asserted anywhere in the text."""
        return frozenset(m.concept for m in self.mentions if m.asserted)
