"""Card issue log and clinician feedback: written on every hook call and feedback post, read for the
accept/override summary. Schema changes go through Alembic so a deployed database is never rebuilt."""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, case, create_engine, event, func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from injectwise.adapters.storage.tables import feedback, issued_cards
from injectwise.core.errors import InputError

MIGRATIONS = Path(__file__).with_name("migrations")
log = logging.getLogger("injectwise.storage")


@dataclass(slots=True, frozen=True)
class IssuedCard:
    card_uuid: str
    service_id: str
    hook: str
    hook_instance: str
    finding_id: str
    rule_version: str
    knowledge_version: str
    indicator: str
    issued_at: datetime


def _engine(url: str) -> Engine:
    try:
        return _make_engine(url)
    except ArgumentError as e:  # includes an unknown dialect or a missing driver
        raise InputError(f"database URL is not usable: {str(e).splitlines()[0]}") from None


def _make_engine(url: str) -> Engine:
    u = make_url(url)
    if u.drivername == "postgresql":  # psycopg 3 is the driver we ship
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(u, connect_args={"check_same_thread": False})

        @event.listens_for(eng, "connect")
        def _pragmas(conn: Any, _rec: Any) -> None:  # WAL: readers never block the writer
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()
        return eng
    return create_engine(u, pool_size=5, max_overflow=5, pool_pre_ping=True)


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class FeedbackStore:
    """Writes the card log from a background thread in batches, so a hook call never waits on the
    database (a SQLite checkpoint or a PostgreSQL round trip showed up as 100-700 ms p99 spikes).
    Feedback is written synchronously: it is what clinicians said, and must not be lost."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        try:
            upgrade(self.engine)
        except SQLAlchemyError as e:
            raise InputError(f"cannot open the database: {type(e).__name__}: {str(e).splitlines()[0]}") from None
        self._queue: queue.Queue[list[IssuedCard] | None] = queue.Queue()
        self._writer = threading.Thread(target=self._drain, name="card-log-writer", daemon=True)
        self._writer.start()

    def log_cards(self, cards: list[IssuedCard]) -> None:
        """Queue issued cards for the background writer (returns at once)."""
        if cards:
            self._queue.put(cards)

    def flush(self) -> None:
        """Wait until every queued card is written."""
        self._queue.join()

    def _drain(self) -> None:
        while True:
            first = self._queue.get()
            batch, done = ([] if first is None else list(first)), 1
            stop = first is None
            while not stop and len(batch) < 500:
                try:
                    more = self._queue.get(timeout=0.05)
                except queue.Empty:
                    break
                done += 1
                if more is None:
                    stop = True
                else:
                    batch += more
            try:
                self.record_cards(batch)
            except SQLAlchemyError as e:  # keep serving; the loss is logged without patient data
                log.error("card log write failed for %d cards: %s", len(batch), type(e).__name__)
            finally:
                for _ in range(done):
                    self._queue.task_done()
            if stop:
                return

    def record_cards(self, cards: list[IssuedCard]) -> None:
        if not cards:
            return
        rows = [{"card_uuid": c.card_uuid, "service_id": c.service_id, "hook": c.hook, "hook_instance": c.hook_instance,
                 "finding_id": c.finding_id, "rule_version": c.rule_version, "knowledge_version": c.knowledge_version,
                 "indicator": c.indicator, "issued_at": c.issued_at} for c in cards]
        with self.engine.begin() as conn:
            conn.execute(insert(issued_cards), rows)

    def finding_for(self, card_uuids: list[str]) -> dict[str, str]:
        if not card_uuids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(issued_cards.c.card_uuid, issued_cards.c.finding_id)
                                .where(issued_cards.c.card_uuid.in_(card_uuids)))
            return {r.card_uuid: r.finding_id for r in rows}

    def record_feedback(self, service_id: str, items: list[dict[str, Any]], received_at: datetime) -> int:
        """Store every item in one transaction: all or nothing."""
        self.flush()  # the cards fed back on may still be queued
        known = self.finding_for([i["card"] for i in items])
        rows = []
        for i in items:
            reason = (i.get("override_reason") or {})
            rows.append({"service_id": service_id, "card_uuid": i["card"], "finding_id": known.get(i["card"]),
                         "outcome": i["outcome"], "accepted_suggestions": i.get("accepted_suggestions"),
                         "override_system": reason.get("system"), "override_code": reason.get("code"),
                         "override_display": reason.get("display"), "user_comment": i.get("user_comment"),
                         "outcome_timestamp": i["outcome_timestamp"], "received_at": received_at})
        with self.engine.begin() as conn:
            conn.execute(insert(feedback), rows)
        return len(rows)

    def summary(self) -> dict[str, Any]:
        """Per finding id: cards issued, accepted, overridden, the rates, and override reasons by code."""
        self.flush()
        f = feedback.c
        with self.engine.connect() as conn:
            issued = dict(conn.execute(select(issued_cards.c.finding_id, func.count())
                                       .group_by(issued_cards.c.finding_id)).all())
            outcomes = conn.execute(select(
                f.finding_id, func.sum(case((f.outcome == "accepted", 1), else_=0)),
                func.sum(case((f.outcome == "overridden", 1), else_=0))).group_by(f.finding_id)).all()
            reasons = conn.execute(select(f.finding_id, f.override_code, f.override_display, func.count())
                                   .where(f.outcome == "overridden")
                                   .group_by(f.finding_id, f.override_code, f.override_display)).all()
        out: dict[str, dict[str, Any]] = {}

        def entry(fid: str | None) -> dict[str, Any]:
            key = fid or "unknown-card"
            return out.setdefault(key, {"finding_id": key, "issued": issued.get(fid, 0) if fid else 0,
                                        "accepted": 0, "overridden": 0, "override_reasons": []})

        for fid in issued:
            entry(fid)
        for fid, acc, ovr in outcomes:
            e = entry(fid)
            e["accepted"], e["overridden"] = int(acc or 0), int(ovr or 0)
        for fid, code, display, n in reasons:
            e = entry(fid)
            e["override_reasons"].append({"code": code or "none-given", "display": display or "no coded reason",
                                          "count": int(n)})
        for e in out.values():
            answered = e["accepted"] + e["overridden"]
            e["feedback"] = answered
            e["accept_rate"] = round(e["accepted"] / answered, 3) if answered else None
            e["override_rate"] = round(e["overridden"] / answered, 3) if answered else None
            e["override_reasons"].sort(key=lambda r: (-r["count"], r["code"]))
        return {"findings": sorted(out.values(), key=lambda e: e["finding_id"])}

    def close(self) -> None:
        """Write what is queued, stop the writer, release connections."""
        if self._writer.is_alive():
            self._queue.put(None)
            self._writer.join(timeout=30)
        self.engine.dispose()
