"""The generic reasoning engine: terminology, a clinical view of the record, computed facts,
and a small rule language. Clinical content lives in knowledge/data, not here."""

from injectwise.engine.evaluate import assess, review

__all__ = ["assess", "review"]
