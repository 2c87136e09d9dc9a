"""``/ui``: the web page. Each route calls the same runtime methods as the JSON API (``serving/routes``) on the
loaded champions and renders a Jinja2 template (autoescaped). Text comes from the redacted model; a query
typed here is redacted by the runtime before it is searched or shown."""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from pathlib import Path as FsPath
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from ml.errors import InputError, ModelUnavailableError, NotFoundError, RecurError
from ml.registry.runs import list_recorded, recorded_plot
from serving.deps import Champions, ChampionsDep, SettingsDep
from serving.ui import session

log = logging.getLogger(__name__)

HERE = FsPath(__file__).resolve().parent
STATIC_DIR = HERE / "static"
# Autoescape on for every template: model text and queries are escaped wherever they appear.
templates = Jinja2Templates(
    env=jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
)

router = APIRouter(prefix="/ui", include_in_schema=False)

Text = Annotated[str, Query(max_length=20_000)]
Filter = Annotated[str | None, Query(max_length=200)]
HEAT_LEVELS = 6  # cell shades: 0 (none) .. 5 (most)


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("keys", session.keys_configured(request))
    context.setdefault("nav", name.split(".")[0])
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    )
    response.headers["Referrer-Policy"] = "same-origin"  # "no-referrer" makes a form post say Origin: null
    return response


def _error(request: Request, exc: RecurError) -> HTMLResponse:
    """The page's form of the API's error mapping: one plain sentence, the right status, no internals."""
    if isinstance(exc, NotFoundError):
        return _page(request, "error.html", 404, title="Not found", message=exc.message)
    if isinstance(exc, InputError):
        return _page(request, "error.html", 422, title="Cannot use that", message=exc.message)
    if isinstance(exc, ModelUnavailableError):
        ref = uuid.uuid4().hex[:12]
        log.info("Serving - UI %s: model unavailable (ref %s): %s", request.url.path, ref, exc.message)
        return _page(
            request,
            "error.html",
            503,
            title="No model loaded",
            message="The model this page needs is not loaded yet. Train and promote it (make run), then reload.",
        )
    ref = uuid.uuid4().hex[:12]
    log.warning("Serving - UI %s failed (ref %s): %s", request.url.path, ref, exc.message)
    return _page(request, "error.html", 400, title="Something went wrong", message=f"Reference {ref}.")


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/ui/login?next={quote(target, safe='')}", status_code=303)


def _reader(request: Request) -> str | None:
    return session.reader_scope(request)


async def _guarded(request: Request, build: Any) -> Response:
    """Run ``build()`` for a reader: login first when keys are set; domain errors as an HTML page."""
    if _reader(request) is None:
        return _login_redirect(request)
    try:
        return await build()
    except RecurError as exc:
        return _error(request, exc)


# ---------------------------------------------------------------------------------------------- search


def _patterns_rt(champions: Champions) -> tuple[Any, Any]:
    model = champions.patterns
    return model, model.runtime


@router.get("", response_class=HTMLResponse)
async def home(request: Request, champions: ChampionsDep) -> Response:
    async def build() -> Response:
        model = None
        try:
            model = champions.patterns
        except ModelUnavailableError:
            pass
        services = sorted({i.service for i in model.runtime.incidents if i.service}) if model else []
        return _page(request, "index.html", q="", services=services, model=model)

    return await _guarded(request, build)


@router.get("/search", response_class=HTMLResponse)
async def search(
    request: Request,
    champions: ChampionsDep,
    settings: SettingsDep,
    q: Text = "",
    service: Filter = None,
    k: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Response:
    async def build() -> Response:
        model, rt = _patterns_rt(champions)
        services = sorted({i.service for i in rt.incidents if i.service})
        text = q.strip()
        if not text:
            return _page(
                request,
                "index.html",
                q="",
                services=services,
                model=model,
                message="Describe what is happening.",
            )
        if len(text) > settings.max_text_chars:
            raise InputError(f"the query is {len(text)} characters; the limit is {settings.max_text_chars}")
        prepared = rt.cached(text)
        if prepared is None:
            prepared = await run_in_threadpool(rt.prepare, text)
        chosen = service or None
        matches, qp = rt.similar(text, k=k, service=chosen, prepared=prepared)
        pattern = rt.pattern(qp["pattern_id"]) if qp and qp["pattern_id"] >= 0 else None
        return _page(
            request,
            "search.html",
            q=prepared.lexical_text,  # the box is refilled with the redacted query too
            shown_query=prepared.lexical_text,  # the redacted query
            service=chosen,
            services=services,
            k=k,
            matches=matches,
            query_pattern=qp,
            pattern=pattern,
            suggestion=rt.suggestion(matches, qp),
            severity=_severities(rt),
            model=model,
        )

    return await _guarded(request, build)


def _severities(rt: Any) -> dict[str, str]:
    return {i.id: str(i.severity or "") for i in rt.incidents}


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
async def incident(
    request: Request,
    champions: ChampionsDep,
    incident_id: Annotated[str, Path(min_length=1, max_length=200)],
) -> Response:
    async def build() -> Response:
        model, rt = _patterns_rt(champions)
        matches, qp = rt.similar_to(incident_id, k=6)
        item = next((i for i in rt.incidents if i.id == incident_id), None)
        if item is None:
            raise NotFoundError(f"no incident {incident_id!r} in the model", field="incident_id")
        matches = [m for m in matches if m["id"] != incident_id][:5]
        pid = rt.assignments.get(incident_id, -1)
        return _page(
            request,
            "incident.html",
            nav="search",
            incident=item,
            pattern=rt.pattern(pid) if pid >= 0 else None,
            matches=matches,
            severity=_severities(rt),
            model=model,
        )

    return await _guarded(request, build)


# ---------------------------------------------------------------------------------------------- patterns


def _heat_grid(table: Any, link: str, since: dt.date | None = None) -> dict[str, Any]:
    """A heat-map table as rows of linked cells, with a shade 0..5 per cell (relative to the largest)."""
    keep = table.sum(axis=1) > 0
    if keep.any():
        table = table[keep]
    values = table.to_numpy().astype(int)
    top = int(values.max()) if values.size else 0
    rows = []
    for (pid, name), counts in zip(table.index, values.tolist(), strict=True):
        cells = [
            {
                "column": str(col),
                "count": int(n),
                "shade": 0
                if n == 0
                else 1 + min(HEAT_LEVELS - 2, int((HEAT_LEVELS - 1) * (n - 1) / max(top, 1))),
                "href": f"/ui/patterns/{int(pid)}?{link}={quote(str(col), safe='')}"
                + (f"&since={since.isoformat()}" if since else ""),
            }
            for col, n in zip(table.columns, counts, strict=True)
        ]
        rows.append({"id": int(pid), "name": str(name), "total": sum(counts), "cells": cells})
    return {"columns": [str(c) for c in table.columns], "rows": rows, "max": top}


def _monthly_change(p: dict[str, Any]) -> float | None:
    slope = p.get("trend_slope")
    return None if slope is None else 100 * (math.exp(float(slope)) - 1.0)


@router.get("/patterns", response_class=HTMLResponse)
async def patterns(request: Request, champions: ChampionsDep) -> Response:
    async def build() -> Response:
        model, rt = _patterns_rt(champions)
        days = [i.started_at.date() for i in rt.incidents]
        last = max(days) if days else dt.date.today()
        year_ago, two_years = last - dt.timedelta(days=365), last - dt.timedelta(days=730)
        by_service = await run_in_threadpool(rt.heatmap_table, "service", "month", year_ago)
        by_month = await run_in_threadpool(rt.heatmap_table, "month", "month", two_years)
        items = sorted(rt.patterns(), key=lambda p: (p["trend"] != "rising", -p["size"]))
        return _page(
            request,
            "patterns.html",
            by_service=_heat_grid(by_service, "service", year_ago),
            by_month=_heat_grid(by_month, "month"),
            year_ago=year_ago,
            two_years=two_years,
            patterns=[{**p, "change": _monthly_change(p)} for p in items],
            unclustered=rt.unclustered_count(),
            model=model,
        )

    return await _guarded(request, build)


@router.get("/patterns/{pattern_id}", response_class=HTMLResponse)
async def pattern(
    request: Request,
    champions: ChampionsDep,
    pattern_id: Annotated[int, Path(ge=-1, le=1_000_000)],
    service: Filter = None,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
    since: Annotated[dt.date | None, Query()] = None,
) -> Response:
    async def build() -> Response:
        model, rt = _patterns_rt(champions)
        info = rt.pattern(pattern_id) if pattern_id >= 0 else None
        members = [
            i
            for i in rt.incidents
            if rt.assignments.get(i.id, -1) == pattern_id
            and (not service or (i.service or "(none)") == service)  # the heat map's name for no service
            and (not month or i.started_at.strftime("%Y-%m") == month)
            and (not since or i.started_at.date() >= since)
        ]
        members.sort(key=lambda i: i.started_at, reverse=True)
        return _page(
            request,
            "pattern.html",
            nav="patterns",
            pattern=info,
            pattern_id=pattern_id,
            change=_monthly_change(info) if info else None,
            incidents=members,
            service=service,
            month=month,
            since=since,
            model=model,
        )

    return await _guarded(request, build)


# ---------------------------------------------------------------------------------------------- indicators


@router.get("/indicators", response_class=HTMLResponse)
async def indicators(request: Request, champions: ChampionsDep) -> Response:
    async def build() -> Response:
        model = champions.forecaster
        rt = model.runtime
        series = [s for s in rt.series() if s["status"] != "error"]
        warnings = sorted(rt.warnings(), key=lambda w: -float(w.get("probability") or 0))
        shifts = [e for e in rt.signals() if e.get("kind") == "shift"]
        shifts.sort(key=lambda e: str(e.get("date")), reverse=True)
        why = rt.explanations_by_id()  # a re-dated shift too, listed at the date it was detected at
        at_risk = {w["series"] for w in warnings if float(w.get("probability") or 0) >= 0.5}
        series.sort(
            key=lambda s: (s["series"] not in at_risk, s["team"] or s["service"] or "", s["indicator"])
        )
        return _page(
            request,
            "indicators.html",
            series=series,
            warnings=warnings,
            shifts=shifts[:30],
            why=why,
            at_risk=at_risk,
            model=model,
            quote=quote,
        )

    return await _guarded(request, build)


@router.get("/indicators/{series:path}/plot.png")
async def indicator_plot(
    request: Request, champions: ChampionsDep, series: Annotated[str, Path(min_length=1, max_length=300)]
) -> Response:
    async def build() -> Response:
        png = await run_in_threadpool(champions.forecaster.runtime.plot_png, series)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    return await _guarded(request, build)


# ---------------------------------------------------------------------------------------------- experiments


@router.get("/experiments", response_class=HTMLResponse)
async def experiments(request: Request, settings: SettingsDep) -> Response:
    async def build() -> Response:
        try:
            rows = await run_in_threadpool(list_recorded, settings.tracking_uri)
        except RecurError:
            raise
        except Exception:  # the tracking store is down: a sentence, never its address
            ref = uuid.uuid4().hex[:12]
            log.warning(
                "Serving - UI experiments: the tracking store is unreachable (ref %s)", ref, exc_info=True
            )
            return _page(
                request,
                "error.html",
                503,
                title="Experiments unavailable",
                message=f"The experiment registry cannot be read right now (reference {ref}).",
            )
        order = {"worsened": 0, "improved": 1, "inconclusive": 2}
        rows.sort(key=lambda r: (order.get(str(r.get("verdict")), 3), str(r["id"])))
        return _page(request, "experiments.html", experiments=rows)

    return await _guarded(request, build)


@router.get("/experiments/{experiment_id}/plot.png")
async def experiment_plot(
    request: Request,
    settings: SettingsDep,
    experiment_id: Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[\w.:-]+$")],
) -> Response:
    async def build() -> Response:
        png = await run_in_threadpool(recorded_plot, settings.tracking_uri, experiment_id)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    return await _guarded(request, build)


# ---------------------------------------------------------------------------------------------- login


def _safe_next(target: str | None) -> str:
    """Only a path of this page: never another site (``//evil``, ``/\\evil``, a scheme)."""
    if not target or not target.startswith("/ui") or target.startswith("//") or "\\" in target:
        return "/ui"
    return target


@router.get("/login", response_class=HTMLResponse)
async def login_form(
    request: Request, next: Annotated[str | None, Query(max_length=2000)] = None
) -> Response:
    if not session.keys_configured(request):
        return RedirectResponse("/ui", status_code=303)
    token = session.new_csrf_token()
    response = _page(request, "login.html", nav="login", next=_safe_next(next), csrf=token)
    response.set_cookie(session.CSRF_COOKIE, token, max_age=3600, **session.cookie_options(request))
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    if not session.keys_configured(request):
        return RedirectResponse("/ui", status_code=303)
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return _page(request, "error.html", 415, title="Cannot log in", message="Send the login form.")
    form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
    field = {k: v[0] for k, v in form.items() if v}
    target = _safe_next(field.get("next"))
    if not session.csrf_ok(request, field.get("csrf", "")):
        log.warning("Serving - UI login refused: missing or mismatched form token")
        return _page(
            request,
            "error.html",
            403,
            title="Cannot log in",
            message="The login form expired or came from another site. Open the login page again.",
        )
    throttle, client = session.login_throttle(request), session.client_address(request)
    wait = throttle.retry_after(client)
    if wait:
        log.warning("Serving - UI login refused: too many failed logins from one address")
        response = _page(
            request,
            "error.html",
            429,
            title="Too many failed logins",
            message=f"Too many wrong keys from this address. Try again in {wait} seconds.",
        )
        response.headers["Retry-After"] = str(wait)
        return response
    found = session.scope_of_key(request, field.get("key", "").strip())
    if found is None:
        throttle.failed(client)
        token = session.new_csrf_token()
        response = _page(
            request, "login.html", 401, nav="login", next=target, csrf=token, message="That key is not valid."
        )
        response.set_cookie(session.CSRF_COOKIE, token, max_age=3600, **session.cookie_options(request))
        return response
    throttle.succeeded(client)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        session.SESSION_COOKIE,
        session.new_session(request, found[0]),
        max_age=session.SESSION_TTL_S,
        **session.cookie_options(request),
    )
    response.delete_cookie(session.CSRF_COOKIE, path=session.COOKIE_PATH)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    response = RedirectResponse("/ui/login" if session.keys_configured(request) else "/ui", status_code=303)
    response.delete_cookie(session.SESSION_COOKIE, path=session.COOKIE_PATH)
    return response
