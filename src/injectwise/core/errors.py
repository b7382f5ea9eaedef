"""Errors the adapters turn into a one-line message (CLI exit 2, HTTP 4xx)."""


class InjectwiseError(Exception):
    """Base class for every error that is the caller's to fix, not a bug."""


class InputError(InjectwiseError):
    """The input (a bundle, a date, an option) cannot be used as given."""


class KnowledgeError(InjectwiseError):
    """The knowledge base failed validation; names the file and entry."""


class NotApplicable(InputError):
    """The record holds nothing the requested evaluation applies to (no planned or completed injection).
    The CLI reports it as an input error; the CDS service answers with no cards."""
