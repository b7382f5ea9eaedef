"""Routes of the clinic web app under /app/ and the registry summary API. Installed on the service's
FastAPI app by `install`, so the pages use the same knowledge base, reader, engine and database."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from starlette.datastructures import UploadFile

from injectwise.adapters.fhir import read_bundle
from injectwise.adapters.service.settings import ServiceSettings
from injectwise.adapters.storage.registry import Registry, User
from injectwise.adapters.web import security
from injectwise.adapters.web.analytics import summary
from injectwise.adapters.web.chart import Chart, assess_plan, build_chart, identity, injection_resources
from injectwise.adapters.web.measures import instruments, interval_score
from injectwise.adapters.web.reports import explanation_context, report_pdf
from injectwise.adapters.web.svg import km_plot, pain_plot, rate_bars
from injectwise.core.errors import InputError, NotApplicable
from injectwise.demo.builder import SITES
from injectwise.engine.evaluate import PlanOverrides
from injectwise.knowledge.model import Knowledge

HERE = Path(__file__).parent
SESSION, ANON = "iw_session", "iw_anon"
SESSION_LIFETIME = timedelta(hours=8)
THROTTLE_WINDOW, THROTTLE_MAX = timedelta(minutes=15), 5
DEMO_USER = User(0, "local-demo", "admin", False)
CLINICAL = ("clinician", "admin")


class WebError(Exception):
    def __init__(self, status: int, message: str, heading: str = "Sorry") -> None:
        super().__init__(message)
        self.status, self.message, self.heading = status, message, heading


class LoginRequired(Exception):
    pass


def today() -> date:
    """The clinic's 'today' (the adapter's clock; the engine is always given an explicit date)."""
    return datetime.now(UTC).date()


def _date(text: str | None, what: str) -> date | None:
    if not text or not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise WebError(400, f"{what}: {text!r} is not a date (YYYY-MM-DD)") from None


def _num(text: Any, what: str, lo: float, hi: float, integer: bool = False) -> float | None:
    if text is None or str(text).strip() == "":
        return None
    try:
        v = float(str(text).strip())
    except ValueError:
        raise WebError(400, f"{what}: {text!r} is not a number") from None
    if not lo <= v <= hi or (integer and not v.is_integer()):
        raise WebError(400, f"{what} must be {'a whole number ' if integer else ''}from {lo:g} to {hi:g}")
    return v


def _form_defaults(chart: Chart) -> dict[str, Any]:
    """The assess form starts from the planned order, else the last injection (same site, same drug)."""
    sub = chart.planned.subject if chart.planned else None
    if sub:
        st = sub.get("steroid") or {}
        return {"target": sub.get("target"), "side": sub.get("side"), "guidance": sub.get("guidance"),
                "steroid": st.get("drug"), "dose": st.get("dose_mg")}
    if chart.timeline:
        t = chart.timeline[-1]
        return {"target": t.target_id, "side": t.side, "guidance": t.guidance, "dose": t.dose_mg}
    return {}


def install(app: FastAPI, kb: Knowledge, settings: ServiceSettings, engine: Engine,
            api_authenticate: Callable[[Request], Awaitable[None]]) -> Registry:
    reg = Registry(engine)
    secret = reg.secret("csrf")
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.mount("/app/static", StaticFiles(directory=str(HERE / "static")), name="clinic-static")
    secure_cookies = settings.public_base_url.startswith("https://")
    targets = sorted(kb.targets.values(), key=lambda t: t.label)
    steroids = [d for d in kb.drugs.values() if d.kind == "corticosteroid"]
    anesthetics = [d for d in kb.drugs.values() if d.kind == "anesthetic"]
    recordable = [t for t in targets if t.id in SITES]

    def cookie(resp: Response, name: str, value: str, request: Request, max_age: int | None = None) -> None:
        resp.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", path="/",
                        secure=secure_cookies or request.url.scheme == "https")

    def user_of(request: Request) -> User | None:
        if settings.insecure_no_auth:
            return DEMO_USER
        token = request.cookies.get(SESSION)
        return reg.session_user(security.token_hash(token)) if token else None

    def anon_of(request: Request) -> str:
        """The pre-sign-in identity a CSRF token binds to (no middleware: the CDS hot path stays untouched)."""
        if not hasattr(request.state, "anon"):
            request.state.anon = request.cookies.get(ANON) or security.new_token()
        return str(request.state.anon)

    def csrf_for(request: Request) -> str:
        return security.csrf_token(secret, request.cookies.get(SESSION) or anon_of(request))

    def need(request: Request, roles: tuple[str, ...] = ("clinician", "analyst", "admin")) -> User:
        u = user_of(request)
        if u is None:
            raise LoginRequired()
        if u.must_change and request.url.path != "/app/password":
            raise WebError(303, "/app/password")
        if u.role not in roles:
            raise WebError(403, "Your role does not give access to this page.", "Not allowed")
        return u

    async def form(request: Request) -> Any:
        """The posted form, after the size limit and the CSRF check (token bound to the session)."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
            raise WebError(413, f"upload larger than the limit of {settings.max_body_bytes} bytes")
        data = await request.form()
        bound = request.cookies.get(SESSION) or request.cookies.get(ANON)
        given = data.get("csrf")
        if not bound or not security.csrf_ok(secret, bound, given if isinstance(given, str) else None):
            raise WebError(403, "The form could not be checked (missing or wrong CSRF token). Reload the page "
                                "and try again.", "Form refused")
        return data

    def page(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> HTMLResponse:
        u = user_of(request)
        resp = templates.TemplateResponse(request, name, {"user": u, "csrf": csrf_for(request),
                                                          "insecure": settings.insecure_no_auth, **ctx},
                                          status_code=status)
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; style-src 'self' "
                                                   "'unsafe-inline'; script-src 'self'; frame-ancestors 'none'")
        if not request.cookies.get(ANON) and not request.cookies.get(SESSION):
            cookie(resp, ANON, anon_of(request), request)
        return resp

    @app.exception_handler(WebError)
    async def _web_error(request: Request, e: WebError) -> Response:
        if e.status == 303:
            return RedirectResponse(e.message, status_code=303)
        return page(request, "error.html", {"status": e.status, "heading": e.heading, "message": e.message}, e.status)

    @app.exception_handler(LoginRequired)
    async def _login_required(_request: Request, _e: LoginRequired) -> Response:
        return RedirectResponse("/app/login", status_code=303)

    def patient_row(u: User, pid: int, action: str = "patient.read") -> dict[str, Any]:
        row = reg.patient(u.name, pid, action)
        if row is None:
            raise WebError(404, f"No patient {pid}.", "Not found")
        return row

    # ---- sign-in --------------------------------------------------------------------------------
    @app.get("/app", include_in_schema=False)
    @app.get("/app/", include_in_schema=False)
    async def home(request: Request) -> Response:
        u = need(request)
        return RedirectResponse("/app/analytics" if u.role == "analyst" else "/app/patients", status_code=303)

    @app.get("/app/login", include_in_schema=False)
    async def login_page(request: Request) -> Response:
        return page(request, "login.html", {"error": None})

    @app.post("/app/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        data = await form(request)
        name, password = str(data.get("name") or "")[:100], str(data.get("password") or "")
        client = request.client.host if request.client else "unknown"
        if await run_in_threadpool(reg.recent_failures, name, client, THROTTLE_WINDOW) >= THROTTLE_MAX:
            return page(request, "login.html", {"error": "Too many failed sign-ins. Wait 15 minutes and try again."},
                        429)
        found = await run_in_threadpool(reg.password_hash, name)
        ok = await run_in_threadpool(security.verify_password, found[1] if found else None, password)
        await run_in_threadpool(reg.note_login, name, client, ok)
        if not ok or found is None:
            return page(request, "login.html", {"error": "User name or password is wrong."}, 401)
        token = security.new_token()
        await run_in_threadpool(reg.new_session, found[0].id, security.token_hash(token), SESSION_LIFETIME)
        resp = RedirectResponse("/app/password" if found[0].must_change else "/app/", status_code=303)
        cookie(resp, SESSION, token, request, int(SESSION_LIFETIME.total_seconds()))
        return resp

    @app.post("/app/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        await form(request)
        token = request.cookies.get(SESSION)
        if token:
            reg.end_session(security.token_hash(token))
        resp = RedirectResponse("/app/login", status_code=303)
        resp.delete_cookie(SESSION, path="/")
        return resp

    @app.get("/app/password", include_in_schema=False)
    async def password_page(request: Request) -> Response:
        need(request)
        return page(request, "password.html", {"error": None})

    @app.post("/app/password", include_in_schema=False)
    async def password(request: Request) -> Response:
        u = need(request)
        data = await form(request)
        new, again = str(data.get("new") or ""), str(data.get("again") or "")
        if len(new) < 10 or new != again:
            return page(request, "password.html", {"error": "The two passwords must match and have at least 10 "
                                                            "characters."}, 400)
        await run_in_threadpool(reg.set_password, u.id, security.hash_password(new))
        reg.audit(u.name, "user.password")
        return RedirectResponse("/app/", status_code=303)

    # ---- patients -------------------------------------------------------------------------------
    @app.get("/app/patients", include_in_schema=False)
    async def patients_page(request: Request, q: str = "") -> Response:
        u = need(request, CLINICAL)
        rows = await run_in_threadpool(reg.list_patients, u.name, q[:100])
        return page(request, "patients.html", {"patients": rows, "q": q})

    @app.get("/app/import", include_in_schema=False)
    async def import_page(request: Request) -> Response:
        need(request, CLINICAL)
        return page(request, "import.html", {"error": None})

    @app.post("/app/import", include_in_schema=False)
    async def import_bundle(request: Request) -> Response:
        u = need(request, CLINICAL)
        data = await form(request)
        up = data.get("bundle")
        raw = await up.read() if isinstance(up, UploadFile) else (up.encode() if isinstance(up, str) else b"")
        as_of = _date(str(data.get("as_of") or ""), "Evaluate as of")
        try:
            record = read_bundle(raw, source="upload")
            doc = orjson.loads(raw)
            who = identity(doc)
        except InputError as e:
            return page(request, "import.html", {"error": f"This file cannot be imported: {e}"}, 400)
        birth = record.patient.birth_date
        pid = await run_in_threadpool(reg.add_patient, u.name, who["fhir_id"], who["name"], birth, who["sex"],
                                      raw.decode("utf-8"), as_of)
        return RedirectResponse(f"/app/patients/{pid}", status_code=303)

    def patient_page(request: Request, u: User, row: dict[str, Any], on: date | None = None,
                     extra: dict[str, Any] | None = None, status: int = 200) -> HTMLResponse:
        try:
            chart = build_chart(row, kb, today(), on)
        except InputError as e:
            raise WebError(422, f"This record cannot be evaluated: {e}", "Record problem") from None
        svg = pain_plot(chart.pain, [(t.date, f"{t.side[:1].upper()} {t.target}") for t in chart.timeline if t.date],
                        chart.as_of)
        ctx = {"p": row, "chart": chart, "pain_svg": svg, "targets": targets, "steroids": steroids,
               "anesthetics": anesthetics, "recordable": recordable, "limit_mg": f"{kb.p('max_cumulative_mg_per_year'):g}",
               "pgic": instruments()["pgic"]["answers"], "assessed": None, "assess_error": None,
               "outcome_error": None, "form": _form_defaults(chart)}
        return page(request, "patient.html", ctx | (extra or {}), status)

    @app.get("/app/patients/{pid}", include_in_schema=False)
    async def patient(request: Request, pid: int, on: str | None = None) -> Response:
        u = need(request, CLINICAL)
        row = await run_in_threadpool(patient_row, u, pid)
        return await run_in_threadpool(patient_page, request, u, row, _date(on, "on"))

    @app.post("/app/patients/{pid}/assess", include_in_schema=False)
    async def assess_form(request: Request, pid: int) -> Response:
        u = need(request, CLINICAL)
        data = await form(request)
        f = {k: str(data.get(k) or "") for k in ("target", "side", "guidance", "steroid", "dose", "anesthetic", "on")}
        row = await run_in_threadpool(patient_row, u, pid, "patient.assess")
        on = _date(f["on"], "Planned for") or build_chart(row, kb, today()).as_of
        plan = PlanOverrides(target=f["target"] or None, side=f["side"] or None, guidance=f["guidance"] or None,
                             steroid=f["steroid"] or None, dose=_num(f["dose"], "Dose", 0, 1000),
                             anesthetic=f["anesthetic"] or None)
        try:
            res = await run_in_threadpool(assess_plan, row, kb, on, plan)
            extra: dict[str, Any] = {"assessed": res, "form": f}
            status = 200
        except (InputError, NotApplicable) as e:
            extra, status = {"assess_error": str(e), "form": f}, 400
        return await run_in_threadpool(patient_page, request, u, row, None, extra, status)

    @app.post("/app/patients/{pid}/outcomes", include_in_schema=False)
    async def outcome_form(request: Request, pid: int) -> Response:
        u = need(request, CLINICAL)
        data = await form(request)
        measured = _date(str(data.get("measured_on") or ""), "Date measured")
        if measured is None:
            raise WebError(400, "Date measured is required")
        values: dict[str, Any] = {"measured_on": measured, "injection_ref": str(data.get("injection_ref") or "") or None,
                                  "nrs": _num(data.get("nrs"), "Pain NRS", 0, 10),
                                  "relief_days": _num(data.get("relief_days"), "Relief days", 0, 3650, True),
                                  "relief_ongoing": bool(data.get("relief_ongoing"))}
        pg = _num(data.get("pgic"), "PGIC", 1, 7, True)
        values["pgic"] = int(pg) if pg is not None else None
        instrument = str(data.get("instrument") or "") or None
        raw = _num(data.get("instrument_raw"), "Joint score raw total", 0, 28, True)
        if instrument and raw is None:
            raise WebError(400, "Give the raw total for the joint score")
        if instrument and raw is not None:
            try:
                values.update(instrument=instrument, instrument_raw=int(raw),
                              instrument_score=interval_score(instrument, int(raw)))
            except InputError as e:
                raise WebError(400, str(e)) from None
        if all(values[k] is None for k in ("nrs", "relief_days", "pgic")) and not instrument:
            raise WebError(400, "Nothing to record: give a pain score, joint score, PGIC or relief duration")
        patient_row(u, pid, "patient.read-for-write")
        await run_in_threadpool(reg.add_outcome, u.name, pid, values)
        return RedirectResponse(f"/app/patients/{pid}#outcome", status_code=303)

    @app.post("/app/patients/{pid}/notes", include_in_schema=False)
    async def note_form(request: Request, pid: int) -> Response:
        u = need(request, CLINICAL)
        data = await form(request)
        when = _date(str(data.get("date") or ""), "Date")
        text = str(data.get("text") or "").strip()
        if when is None or not text:
            raise WebError(400, "A note needs a date and some text")
        row = patient_row(u, pid, "patient.read-for-write")
        ref = f"Patient/{identity(orjson.loads(row['bundle']))['fhir_id']}"
        doc = {"resourceType": "DocumentReference", "id": f"note-{uuid.uuid4().hex[:12]}", "status": "current",
               "subject": {"reference": ref}, "date": f"{when.isoformat()}T12:00:00Z",
               "type": {"text": "Clinical note"},
               "content": [{"attachment": {"contentType": "text/plain",
                                           "data": base64.b64encode(text.encode()).decode()}}]}
        await run_in_threadpool(reg.add_resource, u.name, pid, "note", orjson.dumps(doc).decode())
        return RedirectResponse(f"/app/patients/{pid}", status_code=303)

    @app.post("/app/patients/{pid}/injections", include_in_schema=False)
    async def injection_form(request: Request, pid: int) -> Response:
        u = need(request, CLINICAL)
        data = await form(request)
        f = {k: str(data.get(k) or "") for k in ("date", "target", "side", "guidance", "steroid", "dose", "anesthetic")}
        when = _date(f["date"], "Date given")
        if when is None:
            raise WebError(400, "Date given is required")
        row = patient_row(u, pid, "patient.read-for-write")
        try:
            res = injection_resources(orjson.loads(row["bundle"]), when, f["target"],
                                      None if f["side"] in ("", "unknown") else f["side"], f["guidance"],
                                      f["steroid"] or None, _num(f["dose"], "Dose", 0, 1000),
                                      None if f["anesthetic"] in ("", "none") else f["anesthetic"],
                                      f"app-{uuid.uuid4().hex[:10]}")
        except InputError as e:
            raise WebError(400, str(e)) from None
        for r in res:
            await run_in_threadpool(reg.add_resource, u.name, pid, "injection", orjson.dumps(r).decode())
        return RedirectResponse(f"/app/patients/{pid}", status_code=303)

    # ---- reports --------------------------------------------------------------------------------
    @app.get("/app/patients/{pid}/report.pdf", include_in_schema=False)
    async def report(request: Request, pid: int) -> Response:
        u = need(request, CLINICAL)
        row = await run_in_threadpool(patient_row, u, pid, "patient.report")
        pdf = await run_in_threadpool(report_pdf, templates, row, kb, today(), u.name)
        return Response(pdf, media_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="injection-report-{pid}.pdf"', "Cache-Control": "no-store"})

    @app.get("/app/patients/{pid}/explanation", include_in_schema=False)
    async def explanation(request: Request, pid: int) -> Response:
        u = need(request, CLINICAL)
        row = await run_in_threadpool(patient_row, u, pid, "patient.explanation")
        return page(request, "explanation.html", explanation_context(row, kb, today()))

    # ---- analytics and admin --------------------------------------------------------------------
    def registry_summary(u: User) -> dict[str, Any]:
        return summary(reg.all_patients_for_analytics(u.name), kb, today())

    @app.get("/app/analytics", include_in_schema=False)
    async def analytics(request: Request) -> Response:
        u = need(request)
        s = await run_in_threadpool(registry_summary, u)
        bars = {k: rate_bars(s[k], f"Response rate by {k[3:]}") for k in ("by_target", "by_guidance", "by_drug")}
        return page(request, "analytics.html", {"s": s, "bars": bars, "km_svg": km_plot(s["time_to_recurrence_by_guidance"])})

    @app.get("/api/registry/summary", summary="Clinic registry analytics: response rates, relief, recurrence, "
                                              "injections per patient (aggregates only)")
    async def api_summary(request: Request) -> Response:
        u = user_of(request)
        if u is None:  # integrations: the REST API's own trust (API key or JWT)
            await api_authenticate(request)
            u = User(0, "api-key", "analyst", False)
        s = await run_in_threadpool(registry_summary, u)
        return Response(orjson.dumps(s), media_type="application/json")

    @app.get("/app/admin/audit", include_in_schema=False)
    async def audit(request: Request) -> Response:
        u = need(request, ("admin",))
        entries = await run_in_threadpool(reg.audit_entries, u.name)
        return page(request, "audit.html", {"entries": entries})

    return reg
