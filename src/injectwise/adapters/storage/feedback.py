"""Card issue log and clinician feedback: written on every hook call and feedback post, read for the
accept/override summary. Schema changes go through Alembic so a deployed database is never rebuilt."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Table, case, create_engine, delete, event, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from injectwise.adapters.storage.tables import feedback, issued_cards, used_tokens
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
    suggestion_ids: tuple[str, ...] = ()


def _card_row(c: IssuedCard) -> dict[str, Any]:
    return {"card_uuid": c.card_uuid, "service_id": c.service_id, "hook": c.hook, "hook_instance": c.hook_instance,
            "finding_id": c.finding_id, "rule_version": c.rule_version, "knowledge_version": c.knowledge_version,
            "indicator": c.indicator, "issued_at": c.issued_at, "suggestion_ids": list(c.suggestion_ids)}


def _conflict_free_insert(engine: Engine) -> Callable[[Table], Any]:
    """INSERT ... ON CONFLICT DO NOTHING for the two dialects we support."""
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert


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
            # No checkpoint inside a commit: a hook call waits for its commit, and a checkpoint's fsync
            # stalled it for 100+ ms on a busy disk. The store checkpoints from its own thread instead.
            cur.execute("PRAGMA wal_autocheckpoint=0")
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


class FeedbackRejected(Exception):
    """Feedback that contradicts what was issued (unknown card, other service, unknown suggestion, a
    second outcome for one card): nothing of the request is stored."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class _Job:
    cards: list[IssuedCard]
    token: tuple[str, str, float] | None  # (iss, jti, expires_at): claim a JWT id
    done: Future[bool]


MAX_BATCH = 1000
CHECKPOINT_EVERY_S = 1.0
ROWS_PER_STATEMENT = 1500  # 11 columns: well under SQLite's 32766 bound parameters per statement


class FeedbackStore:
    """Group commit: every hook call hands its cards (and its JWT id) to one writer thread and waits for
    the transaction that holds them, so a card is in the database before the client sees it (a kill -9
    loses no returned card); concurrent calls share one commit, so the wait stays about one commit long.
    Feedback is written synchronously by the caller's thread."""

    def __init__(self, url: str, migrate: bool = True) -> None:
        self.url = url
        self.engine = _engine(url)
        self._conflict_insert = _conflict_free_insert(self.engine)
        if migrate:
            try:
                upgrade(self.engine)
            except SQLAlchemyError as e:
                raise InputError(f"cannot open the database: {type(e).__name__}: {str(e).splitlines()[0]}") from None
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._writer = threading.Thread(target=self._drain, name="card-log-writer", daemon=True)
        self._writer.start()
        self._stop = threading.Event()
        if self.engine.dialect.name == "sqlite":
            threading.Thread(target=self._checkpoints, name="sqlite-checkpoint", daemon=True).start()

    def _checkpoints(self) -> None:
        """Fold the WAL into the database file every second, beside the writer (PASSIVE never blocks it)."""
        while not self._stop.wait(CHECKPOINT_EVERY_S):
            try:
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except SQLAlchemyError as e:
                log.warning("checkpoint failed: %s", type(e).__name__)

    def log_cards(self, cards: list[IssuedCard], token: tuple[str, str, float] | None = None) -> Future[bool]:
        """Queue issued cards, and the JWT id (iss, jti, expires_at) of the call that produced them; the
        future is done when they are committed. False: the token id was already used, so the cards were
        not stored (the call is a replay and must not answer them). One commit per call, not two."""
        fut: Future[bool] = Future()
        if not cards and token is None:
            fut.set_result(True)
            return fut
        self._queue.put(_Job(cards, token, fut))
        return fut

    def claim_token(self, iss: str, jti: str, expires_at: float) -> Future[bool]:
        """Record a JWT id as used; the future says True when it was new (False: a replay)."""
        fut: Future[bool] = Future()
        self._queue.put(_Job([], (iss, jti, expires_at), fut))
        return fut

    def flush(self) -> None:
        """Wait until every queued job is committed."""
        self._queue.join()

    def _drain(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                self._queue.task_done()
                return
            jobs = [first]
            stop = False
            while len(jobs) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.append(more)
            try:
                fresh = self._commit(jobs)
                for job, ok in zip(jobs, fresh, strict=True):
                    job.done.set_result(ok)
            except SQLAlchemyError as e:  # the calls waiting on this batch answer 503; nothing is claimed
                log.error("card log write failed for %d jobs: %s", len(jobs), type(e).__name__)
                for job in jobs:
                    job.done.set_exception(e)
            finally:
                for _ in range(len(jobs) + stop):
                    self._queue.task_done()
            if stop:
                return

    def _commit(self, jobs: list[_Job]) -> list[bool]:
        """One transaction, two statements whatever the batch size (each statement hands the GIL back and
        forth with the busy event loop): all JWT ids in one INSERT ... ON CONFLICT DO NOTHING RETURNING,
        then the cards of the calls whose id was new (or who had none)."""
        tokens = {job.token[:2]: job.token[2] for job in jobs if job.token is not None}
        with self.engine.begin() as conn:
            new: set[tuple[str, str]] = set()
            if tokens:
                rows = [{"iss": k[0], "jti": k[1], "expires_at": exp} for k, exp in tokens.items()]
                res = conn.execute(self._conflict_insert(used_tokens).values(rows).on_conflict_do_nothing()
                                   .returning(used_tokens.c.iss, used_tokens.c.jti))
                new = {(r.iss, r.jti) for r in res}
            fresh = []
            for job in jobs:
                if job.token is None:
                    fresh.append(True)
                    continue
                key = job.token[:2]
                fresh.append(key in new)
                new.discard(key)  # the same id twice in one batch: only the first call is fresh
            cards = [_card_row(c) for job, ok in zip(jobs, fresh, strict=True) if ok for c in job.cards]
            for at in range(0, len(cards), ROWS_PER_STATEMENT):  # multi-row VALUES, not executemany (a step per row)
                conn.execute(insert(issued_cards).values(cards[at:at + ROWS_PER_STATEMENT]))
        return fresh

    def prune_tokens(self, now: float) -> int:
        """Forget JWT ids whose tokens have expired (their exp refuses a replay by itself)."""
        with self.engine.begin() as conn:
            return conn.execute(delete(used_tokens).where(used_tokens.c.expires_at < now)).rowcount or 0

    def record_cards(self, cards: list[IssuedCard]) -> None:
        """Write cards now, in the caller's thread."""
        if cards:
            with self.engine.begin() as conn:
                conn.execute(insert(issued_cards), [_card_row(c) for c in cards])

    def finding_for(self, card_uuids: list[str]) -> dict[str, str]:
        return {u: row["finding_id"] for u, row in self._issued(card_uuids).items()}

    def _issued(self, card_uuids: list[str]) -> dict[str, dict[str, Any]]:
        if not card_uuids:
            return {}
        c = issued_cards.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.card_uuid, c.finding_id, c.service_id, c.suggestion_ids)
                                .where(c.card_uuid.in_(card_uuids)))
            return {r.card_uuid: {"finding_id": r.finding_id, "service_id": r.service_id,
                                  "suggestion_ids": r.suggestion_ids} for r in rows}

    def record_feedback(self, service_id: str, items: list[dict[str, Any]], received_at: datetime) -> int:
        """Check every item against the issued card, then store the new ones in one transaction (all or
        nothing). A repeat of a stored (card, outcome) is accepted and not stored again. Returns how many
        items are now on record for this request (new + repeats)."""
        uuids = list(dict.fromkeys(i["card"] for i in items))
        issued = self._issued(uuids)
        f = feedback.c
        with self.engine.connect() as conn:
            stored = {(r.card_uuid, r.outcome) for r in conn.execute(
                select(f.card_uuid, f.outcome).where(f.card_uuid.in_(uuids)))}
        rows, seen = [], set(stored)
        answered = {card for card, _ in stored}
        for n, i in enumerate(items):
            where = f"feedback[{n}]"
            card = issued.get(i["card"])
            if card is None:
                raise FeedbackRejected(400, f"{where}.card: no card with this uuid was issued by this service")
            if card["service_id"] != service_id:
                raise FeedbackRejected(400, f"{where}.card was issued by another service ({card['service_id']})")
            allowed = set(card["suggestion_ids"] or ())
            for sid in i.get("accepted_suggestions") or ():
                if sid not in allowed:
                    raise FeedbackRejected(400, f"{where}.acceptedSuggestions: {sid!r} is not a suggestion of this card")
            key = (i["card"], i["outcome"])
            if key in seen:
                continue  # idempotent: the same outcome again
            if i["card"] in answered:
                raise FeedbackRejected(409, f"{where}: the card already has a different outcome on record")
            seen.add(key)
            answered.add(i["card"])
            reason = (i.get("override_reason") or {})
            rows.append({"service_id": service_id, "card_uuid": i["card"], "finding_id": card["finding_id"],
                         "outcome": i["outcome"], "accepted_suggestions": i.get("accepted_suggestions"),
                         "override_system": reason.get("system"), "override_code": reason.get("code"),
                         "override_display": reason.get("display"), "user_comment": i.get("user_comment"),
                         "outcome_timestamp": i["outcome_timestamp"], "received_at": received_at})
        if rows:
            with self.engine.begin() as conn:
                conn.execute(self._conflict_insert(feedback).values(rows).on_conflict_do_nothing())
        return len(items)

    def summary(self) -> dict[str, Any]:
        """Per finding id: cards issued, accepted, overridden, the rates, and override reasons by code."""
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
        self._stop.set()
        if self._writer.is_alive():
            self._queue.put(None)
            self._writer.join(timeout=30)
        if self.engine.dialect.name == "sqlite":
            try:
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            except SQLAlchemyError as e:
                log.warning("final checkpoint failed: %s", type(e).__name__)
        self.engine.dispose()
