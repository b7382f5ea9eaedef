"""Clinic registry tables (users, sessions, patients, app-added FHIR resources, outcomes, audit log),
on the same metadata as the feedback tables so one database and one migration chain hold both."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, DateTime, Float, ForeignKey, Integer, String, Table, Text

from injectwise.adapters.storage.tables import metadata

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("must_change", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(), nullable=False),
)

sessions = Table(
    "sessions", metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(), nullable=False),
    Column("expires_at", DateTime(), nullable=False),
)

login_attempts = Table(
    "login_attempts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, index=True),
    Column("client", String(64), nullable=False, index=True),
    Column("ok", Boolean, nullable=False),
    Column("at", DateTime(), nullable=False, index=True),
)

app_secrets = Table(
    "app_secrets", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(128), nullable=False),
)

patients = Table(
    "patients", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fhir_id", String(200), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("birth_date", Date(), nullable=True),
    Column("sex", String(16), nullable=True),
    Column("bundle", Text, nullable=False),  # the imported FHIR Bundle, as received (JSON)
    Column("as_of", Date(), nullable=True),  # replay date for historic records; null = today
    Column("imported_at", DateTime(), nullable=False),
    Column("imported_by", String(100), nullable=False),
)

patient_resources = Table(  # FHIR resources added in the app: recorded injections, notes
    "patient_resources", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("patient_id", Integer, ForeignKey("patients.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("resource", Text, nullable=False),
    Column("created_at", DateTime(), nullable=False),
    Column("created_by", String(100), nullable=False),
)

outcomes = Table(
    "outcomes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("patient_id", Integer, ForeignKey("patients.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("injection_ref", String(200), nullable=True),
    Column("measured_on", Date(), nullable=False),
    Column("nrs", Float, nullable=True),
    Column("instrument", String(16), nullable=True),  # hoos-jr | koos-jr
    Column("instrument_raw", Integer, nullable=True),
    Column("instrument_score", Float, nullable=True),
    Column("pgic", Integer, nullable=True),
    Column("relief_days", Integer, nullable=True),
    Column("relief_ongoing", Boolean, nullable=False, default=False),
    Column("recorded_at", DateTime(), nullable=False),
    Column("recorded_by", String(100), nullable=False),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(), nullable=False, index=True),
    Column("actor", String(100), nullable=False),
    Column("action", String(64), nullable=False),
    Column("patient_id", Integer, nullable=True, index=True),
    Column("detail", String(300), nullable=False, default=""),
)
