"""The clinic registry: users and sessions, imported patients with what the app added to their record,
recorded outcomes, and an audit log. Every method that reads or writes patient data takes the actor
and writes the audit row in the same transaction, so no patient access escapes the log."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from injectwise.adapters.storage.feedback import _engine, upgrade
from injectwise.adapters.storage.registry_tables import (
    app_secrets,
    audit_log,
    login_attempts,
    outcomes,
    patient_resources,
    patients,
    sessions,
    users,
)
from injectwise.core.errors import InputError

ROLES = ("clinician", "analyst", "admin")


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: str
    must_change: bool


def _now() -> datetime:
    return datetime.now().replace(microsecond=0)


class Registry:
    def __init__(self, engine_or_url: Engine | str) -> None:
        if isinstance(engine_or_url, str):
            self.engine = _engine(engine_or_url)
            upgrade(self.engine)
        else:
            self.engine = engine_or_url

    # ---- audit --------------------------------------------------------------------------------
    @staticmethod
    def _audit(conn: Connection, actor: str, action: str, patient_id: int | None = None, detail: str = "") -> None:
        conn.execute(insert(audit_log).values(at=_now(), actor=actor, action=action, patient_id=patient_id,
                                              detail=detail[:300]))

    def audit(self, actor: str, action: str, patient_id: int | None = None, detail: str = "") -> None:
        with self.engine.begin() as conn:
            self._audit(conn, actor, action, patient_id, detail)

    def audit_entries(self, actor: str, limit: int = 500) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            rows = conn.execute(select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)).mappings().all()
            self._audit(conn, actor, "audit.view")
            return [dict(r) for r in rows]

    # ---- users and sessions -------------------------------------------------------------------
    def add_user(self, name: str, role: str, password_hash: str) -> None:
        if role not in ROLES:
            raise InputError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
        if not name.strip() or len(name) > 100:
            raise InputError("a user name needs 1 to 100 characters")
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(users).values(name=name, role=role, password_hash=password_hash, must_change=True,
                                                  created_at=_now()))
                self._audit(conn, "cli", "user.add", detail=f"{name} ({role})")
        except IntegrityError:
            raise InputError(f"user {name!r} already exists") from None

    def password_hash(self, name: str) -> tuple[User, str] | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(users).where(users.c.name == name)).mappings().first()
        if r is None:
            return None
        return User(r["id"], r["name"], r["role"], bool(r["must_change"])), r["password_hash"]

    def set_password(self, user_id: int, password_hash: str, must_change: bool = False) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(users).where(users.c.id == user_id)
                         .values(password_hash=password_hash, must_change=must_change))

    def recent_failures(self, name: str, client: str, window: timedelta) -> int:
        since = _now() - window
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(login_attempts).where(and_(
                login_attempts.c.at >= since, login_attempts.c.ok.is_(False),
                or_(login_attempts.c.name == name, login_attempts.c.client == client)))).scalar_one())

    def note_login(self, name: str, client: str, ok: bool) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(login_attempts).values(name=name[:100], client=client[:64], ok=ok, at=_now()))
            self._audit(conn, name[:100], "login.ok" if ok else "login.failed")

    def new_session(self, user_id: int, token_sha256: str, lifetime: timedelta) -> None:
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.expires_at < now))
            conn.execute(insert(sessions).values(token_sha256=token_sha256, user_id=user_id, created_at=now,
                                                 expires_at=now + lifetime))

    def session_user(self, token_sha256: str) -> User | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(users).join(sessions, sessions.c.user_id == users.c.id).where(and_(
                sessions.c.token_sha256 == token_sha256, sessions.c.expires_at > _now()))).mappings().first()
        return User(r["id"], r["name"], r["role"], bool(r["must_change"])) if r else None

    def end_session(self, token_sha256: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.token_sha256 == token_sha256))

    def secret(self, name: str) -> str:
        """A server secret kept in the database, so it survives restarts and is shared by workers."""
        with self.engine.begin() as conn:
            v = conn.execute(select(app_secrets.c.value).where(app_secrets.c.name == name)).scalar()
            if v is None:
                v = secrets.token_hex(32)
                try:
                    with conn.begin_nested():
                        conn.execute(insert(app_secrets).values(name=name, value=v))
                except IntegrityError:
                    v = conn.execute(select(app_secrets.c.value).where(app_secrets.c.name == name)).scalar_one()
            return str(v)

    # ---- patients -----------------------------------------------------------------------------
    def add_patient(self, actor: str, fhir_id: str, display_name: str, birth: date | None, sex: str | None,
                    bundle_json: str, as_of: date | None) -> int:
        with self.engine.begin() as conn:
            pid = int(conn.execute(insert(patients).values(
                fhir_id=fhir_id, display_name=display_name, birth_date=birth, sex=sex, bundle=bundle_json,
                as_of=as_of, imported_at=_now(), imported_by=actor).returning(patients.c.id)).scalar_one())
            self._audit(conn, actor, "patient.import", pid)
            return pid

    def list_patients(self, actor: str, search: str = "") -> list[dict[str, Any]]:
        q = select(patients.c.id, patients.c.fhir_id, patients.c.display_name, patients.c.birth_date, patients.c.sex,
                   patients.c.imported_at).order_by(patients.c.display_name, patients.c.id)
        if search.strip():
            like = f"%{search.strip().lower()}%"
            q = q.where(or_(func.lower(patients.c.display_name).like(like), func.lower(patients.c.fhir_id).like(like)))
        with self.engine.begin() as conn:
            rows = [dict(r) for r in conn.execute(q).mappings()]
            self._audit(conn, actor, "patient.list", detail=f"{len(rows)} shown")
            return rows

    def patient(self, actor: str, pid: int, action: str = "patient.read") -> dict[str, Any] | None:
        """The patient row, the resources the app added and the outcomes; audited as one read."""
        with self.engine.begin() as conn:
            r = conn.execute(select(patients).where(patients.c.id == pid)).mappings().first()
            if r is None:
                return None
            out = dict(r)
            out["resources"] = [dict(x) for x in conn.execute(
                select(patient_resources).where(patient_resources.c.patient_id == pid)
                .order_by(patient_resources.c.id)).mappings()]
            out["outcomes"] = [dict(x) for x in conn.execute(
                select(outcomes).where(outcomes.c.patient_id == pid)
                .order_by(outcomes.c.measured_on, outcomes.c.id)).mappings()]
            self._audit(conn, actor, action, pid)
            return out

    def all_patients_for_analytics(self, actor: str) -> list[dict[str, Any]]:
        """Every patient with resources and outcomes, for aggregate analytics (audited once, no patient id)."""
        with self.engine.begin() as conn:
            ps = [dict(r) for r in conn.execute(select(patients).order_by(patients.c.id)).mappings()]
            res = conn.execute(select(patient_resources).order_by(patient_resources.c.id)).mappings().all()
            outs = conn.execute(select(outcomes).order_by(outcomes.c.measured_on, outcomes.c.id)).mappings().all()
            self._audit(conn, actor, "registry.aggregate", detail=f"{len(ps)} patients")
        by_id = {p["id"]: p | {"resources": [], "outcomes": []} for p in ps}
        for x in res:
            by_id[x["patient_id"]]["resources"].append(dict(x))
        for o in outs:
            by_id[o["patient_id"]]["outcomes"].append(dict(o))
        return list(by_id.values())

    def add_resource(self, actor: str, pid: int, kind: str, resource_json: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(patient_resources).values(patient_id=pid, kind=kind, resource=resource_json,
                                                          created_at=_now(), created_by=actor))
            self._audit(conn, actor, f"{kind}.add", pid)

    def add_outcome(self, actor: str, pid: int, values: dict[str, Any]) -> int:
        with self.engine.begin() as conn:
            oid = int(conn.execute(insert(outcomes).values(patient_id=pid, recorded_at=_now(), recorded_by=actor,
                                                           **values).returning(outcomes.c.id)).scalar_one())
            self._audit(conn, actor, "outcome.add", pid)
            return oid

    def set_as_of(self, actor: str, pid: int, as_of: date | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(patients).where(patients.c.id == pid).values(as_of=as_of))
            self._audit(conn, actor, "patient.update", pid, "evaluation date")
