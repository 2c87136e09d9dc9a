from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from serving.deps import ChampionsDep, SettingsDep
from serving.errors import ErrorBody
from serving.models import LoadedModel
from serving.schemas import (
    ClassifyRequest,
    ClassifyResponse,
    FilterValue,
    ModelRef,
    SimilarRequest,
    SimilarResponse,
)
from serving.security import ReadScope

router = APIRouter(prefix="/v1/incidents", tags=["incidents"])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed request body."},
    401: {"model": ErrorBody, "description": "Missing or invalid API key."},
    404: {"model": ErrorBody, "description": "Unknown incident."},
    413: {"model": ErrorBody, "description": "Request body too large."},
    422: {"model": ErrorBody, "description": "Invalid request."},
    503: {"model": ErrorBody, "description": "No champion model is loaded."},
}


def _limit_text(text: str, limit: int) -> str:
    from ml.errors import InputError

    if len(text) > limit:
        raise InputError(f"text is {len(text)} characters; the limit is {limit}", field="text")
    return text


def _body(model: LoadedModel, matches: list[dict[str, Any]], qp: dict[str, Any] | None) -> bytes:
    # Serialised here, not by FastAPI: the match dicts already have the SimilarResponse shape (a test checks
    # them against it, schemathesis against the OpenAPI schema), and validating them again per request cost
    # more than the search.
    body = {
        "model": {"name": model.name, "version": model.version},
        "query_pattern": qp,
        "suggestion": model.runtime.suggestion(matches, qp),
        "matches": matches,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _response(model: LoadedModel, matches: list[dict[str, Any]], qp: dict[str, Any] | None) -> Response:
    return Response(_body(model, matches, qp), media_type="application/json")


async def _prepared(rt: Any, text: str) -> Any:
    """The prepared query: from the LRU cache inline, else embedded in a worker thread (torch releases the
    GIL, so other requests are served meanwhile)."""
    prepared = rt.cached(text)
    if prepared is None:
        prepared = await run_in_threadpool(rt.prepare, text)
    return prepared


@router.post(
    "/similar",
    response_model=SimilarResponse,
    responses=ERRORS,
    summary="The past incidents closest to what is happening now, their pattern and why they match.",
)
async def similar(
    body: SimilarRequest, champions: ChampionsDep, settings: SettingsDep, _: ReadScope
) -> Response:
    model = champions.patterns
    text = _limit_text(body.query_text(), settings.max_text_chars)
    key = (text, body.k, body.service, body.team, body.since)
    answer = model.answers.get(key)  # the same question to the same version: the same answer
    if answer is None:
        rt = model.runtime
        prepared = await _prepared(rt, text)
        # The search itself is a few milliseconds of numpy over the index: run inline, no thread hop.
        matches, qp = rt.similar(
            text, k=body.k, service=body.service, team=body.team, since=body.since, prepared=prepared
        )
        answer = _body(model, matches, qp)
        model.answers.put(key, answer)
    return Response(answer, media_type="application/json")


@router.get(
    "/{incident_id}/similar",
    response_model=SimilarResponse,
    responses=ERRORS,
    summary="The past incidents closest to a known incident.",
)
async def similar_to(
    incident_id: Annotated[str, Path(min_length=1, max_length=200)],
    champions: ChampionsDep,
    _: ReadScope,
    k: Annotated[int, Query(ge=1, le=50)] = 5,
    service: Annotated[FilterValue | None, Query()] = None,
    team: Annotated[FilterValue | None, Query()] = None,
    since: Annotated[dt.date | None, Query()] = None,
) -> Response:
    model = champions.patterns
    matches, qp = model.runtime.similar_to(incident_id, k=k, service=service, team=team, since=since)
    return _response(model, matches, qp)


@router.post(
    "/classify",
    response_model=ClassifyResponse,
    responses=ERRORS,
    summary="The failure pattern a new postmortem belongs to, with a confidence, or unclustered.",
)
async def classify(
    body: ClassifyRequest, champions: ChampionsDep, settings: SettingsDep, _: ReadScope
) -> ClassifyResponse:
    model = champions.patterns
    text = _limit_text(body.query_text(), settings.max_text_chars)
    prepared = await _prepared(model.runtime, text)
    out = model.runtime.classify_vec(prepared.vector, prepared.document)
    return ClassifyResponse(model=ModelRef(name=model.name, version=model.version), **out)
