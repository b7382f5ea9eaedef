"""The clinical knowledge base: versioned data files plus the loader that validates them."""

from injectwise.knowledge.loader import load_knowledge
from injectwise.knowledge.model import Knowledge

__all__ = ["Knowledge", "load_knowledge"]
