from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from serving.deps import ChampionsDep
from serving.models import LoadedModel
from serving.routes.incidents import ERRORS
from serving.schemas import Heatmap, ModelRef, Pattern, PatternList
from serving.security import ReadScope

router = APIRouter(prefix="/v1", tags=["patterns"])

By = Literal["service", "team", "month"]
Period = Literal["month", "quarter", "year"]


@router.get("/patterns", response_model=PatternList, responses=ERRORS, summary="All failure patterns.")
def list_patterns(champions: ChampionsDep, _: ReadScope) -> PatternList:
    model = champions.patterns
    rt = model.runtime
    return PatternList(
        model=ModelRef(name=model.name, version=model.version),
        unclustered=rt.unclustered_count(),
        patterns=[Pattern(**p) for p in rt.patterns()],
    )


@router.get(
    "/patterns/{pattern_id}", response_model=Pattern, responses=ERRORS, summary="One failure pattern."
)
def get_pattern(
    pattern_id: Annotated[int, Path(ge=-1, le=1_000_000)], champions: ChampionsDep, _: ReadScope
) -> Pattern:
    model = champions.patterns
    return Pattern(**model.runtime.pattern(pattern_id))


def _heat(model: LoadedModel, by: By, period: Period, since: dt.date | None) -> dict:
    return model.runtime.heatmap(by=by, period=period, since=since)


@router.get(
    "/heatmap",
    response_model=Heatmap,
    responses=ERRORS,
    summary="Incident counts: pattern x service/team/month.",
)
def heatmap(
    champions: ChampionsDep,
    _: ReadScope,
    by: Annotated[By, Query(description="Columns: service, team or month.")] = "service",
    period: Annotated[Period, Query(description="Time bucket when by=month.")] = "month",
    since: Annotated[dt.date | None, Query(description="Only incidents on or after this date.")] = None,
) -> Heatmap:
    model = champions.patterns
    data = _heat(model, by, period, since)
    return Heatmap(model=ModelRef(name=model.name, version=model.version), by=by, period=period, **data)


@router.get(
    "/heatmap.png",
    responses={**ERRORS, 200: {"content": {"image/png": {}}, "description": "The heat map as a PNG."}},
    summary="The heat map as a PNG for slides.",
)
async def heatmap_png(
    champions: ChampionsDep,
    _: ReadScope,
    by: Annotated[By, Query()] = "service",
    period: Annotated[Period, Query()] = "month",
    since: Annotated[dt.date | None, Query()] = None,
) -> Response:
    model = champions.patterns
    png = await run_in_threadpool(model.runtime.heatmap_png, by=by, period=period, since=since)
    return Response(png, media_type="image/png")


@router.get(
    "/heatmap.html",
    responses={**ERRORS, 200: {"content": {"text/html": {}}, "description": "An interactive heat map."}},
    summary="The heat map as a self-contained interactive HTML page.",
)
async def heatmap_html(
    champions: ChampionsDep,
    _: ReadScope,
    by: Annotated[By, Query()] = "service",
    period: Annotated[Period, Query()] = "month",
    since: Annotated[dt.date | None, Query()] = None,
) -> HTMLResponse:
    model = champions.patterns
    html = await run_in_threadpool(model.runtime.heatmap_html, by=by, period=period, since=since)
    return HTMLResponse(html)
