"""Errors as FHIR OperationOutcome bodies: every 4xx the service returns carries one."""

from __future__ import annotations

from typing import Any

ISSUE_CODES = {400: "invalid", 401: "security", 403: "forbidden", 404: "not-found", 405: "not-supported", 409: "conflict",
               412: "incomplete", 413: "too-costly", 415: "not-supported", 422: "invalid", 500: "exception",
               502: "transient", 503: "transient", 504: "timeout"}


class ServiceError(Exception):
    """An expected failure with an HTTP status and a one-line, patient-free message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def operation_outcome(status: int, message: str) -> dict[str, Any]:
    severity = "fatal" if status >= 500 else "error"
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": ISSUE_CODES.get(status, "processing"), "diagnostics": message}]}
