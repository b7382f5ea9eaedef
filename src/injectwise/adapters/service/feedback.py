"""CDS Hooks feedback bodies, checked against the spec's invariants before anything is stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from injectwise.adapters.service.outcome import ServiceError


def _timestamp(value: Any, where: str) -> datetime:
    if not isinstance(value, str) or "T" not in value:
        raise ServiceError(400, f"{where}.outcomeTimestamp must be an RFC 3339 date-time")
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ServiceError(400, f"{where}.outcomeTimestamp is not a valid date-time") from None
    if ts.tzinfo is None:
        raise ServiceError(400, f"{where}.outcomeTimestamp needs a time zone (UTC)")
    return ts.astimezone(UTC).replace(tzinfo=None)


def parse_feedback(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("feedback"), list) or not body["feedback"]:
        raise ServiceError(400, 'expected {"feedback": [ ... ]} with at least one item')
    out = []
    for n, item in enumerate(body["feedback"]):
        where = f"feedback[{n}]"
        if not isinstance(item, dict):
            raise ServiceError(400, f"{where} must be an object")
        card, outcome = item.get("card"), item.get("outcome")
        if not isinstance(card, str) or not card:
            raise ServiceError(400, f"{where}.card (the card uuid) is required")
        if outcome not in ("accepted", "overridden"):
            raise ServiceError(400, f"{where}.outcome must be accepted or overridden")
        accepted, reason = item.get("acceptedSuggestions"), item.get("overrideReason")
        if outcome == "accepted":
            if reason is not None:
                raise ServiceError(400, f"{where}: overrideReason is only for overridden cards (cds-fb)")
            if (not isinstance(accepted, list) or not accepted
                    or not all(isinstance(a, dict) and isinstance(a.get("id"), str) and a["id"] for a in accepted)):
                raise ServiceError(400, f"{where}.acceptedSuggestions must list the accepted suggestions' ids (cds-fb)")
        else:
            if accepted is not None:
                raise ServiceError(400, f"{where}: acceptedSuggestions is only for accepted cards (cds-fb)")
        coding: dict[str, Any] = {}
        comment = None
        if reason is not None:
            if not isinstance(reason, dict) or not (reason.get("reason") or reason.get("userComment")):
                raise ServiceError(400, f"{where}.overrideReason needs a reason or a userComment (cds-fb)")
            r = reason.get("reason")
            if r is not None:
                if not isinstance(r, dict) or not isinstance(r.get("code"), str) or not isinstance(r.get("system"), str):
                    raise ServiceError(400, f"{where}.overrideReason.reason must be a Coding with system and code")
                coding = {"system": r["system"], "code": r["code"], "display": r.get("display")}
            comment = reason.get("userComment")
            if comment is not None and not isinstance(comment, str):
                raise ServiceError(400, f"{where}.overrideReason.userComment must be a string")
        out.append({"card": card, "outcome": outcome,
                    "accepted_suggestions": [a["id"] for a in accepted] if accepted else None,
                    "override_reason": coding or None, "user_comment": comment,
                    "outcome_timestamp": _timestamp(item.get("outcomeTimestamp"), where)})
    return out
