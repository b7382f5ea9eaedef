"""Persistence of what the service issued and what clinicians did with it (SQLite or PostgreSQL)."""

from injectwise.adapters.storage.feedback import FeedbackRejected, FeedbackStore, IssuedCard

__all__ = ["FeedbackRejected", "FeedbackStore", "IssuedCard"]
