"""The clinical language layer: one ConText-style reading of every free text the product meets.

    from injectwise.language import analyze, Mention, Analysis
    analyze(text, kb) -> Analysis(sentences, mentions)

Each Mention is a knowledge-base concept at a character span with its modifiers (negated,
possible, historical, hypothetical, family), side and body site. Triggers, pseudo-triggers,
terminators, the scope window and the text cap are data (knowledge/data/language.yaml); concept
patterns and exclusions stay in valuesets.yaml.

Decision: standard library only, not medspaCy/spaCy. medspaCy on Python 3.11 pins numpy < 2 (a
conflict for the rest of the stack) and its sentence splitter costs ~30 ms a note, against a
target of >= 500 notes/s/core; the algorithm (Harkema et al. 2009, ConText) is small and its
trigger lists are data, so a compiled-regex implementation keeps the layer fast, dependency-free
and testable against the same kinds of cases."""

from __future__ import annotations

from typing import TYPE_CHECKING

from injectwise.language.model import Analysis, Mention, Sentence

if TYPE_CHECKING:
    from injectwise.knowledge.model import Knowledge

__all__ = ["Analysis", "Mention", "Sentence", "analyze"]


def analyze(text: str, kb: Knowledge) -> Analysis:
    """Sentences and concept mentions (with modifiers, side, site) of one free text."""
    return kb.terminology.analyze(text)
