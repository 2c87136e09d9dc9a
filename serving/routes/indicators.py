from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from serving.deps import ChampionsDep
from serving.errors import ErrorBody
from serving.routes.incidents import ERRORS
from serving.schemas import (
    EarlyWarning,
    ForecastPoint,
    ForecastRequest,
    ForecastResponse,
    ModelRef,
    SeriesInfo,
    SeriesList,
    Signal,
    SignalCause,
    SignalCauses,
    SignalList,
    WarningList,
)
from serving.security import ReadScope

router = APIRouter(prefix="/v1", tags=["indicators"])


@router.get(
    "/indicators",
    response_model=SeriesList,
    responses=ERRORS,
    summary="Every indicator series and its chosen model.",
)
def list_series(champions: ChampionsDep, _: ReadScope) -> SeriesList:
    model = champions.forecaster
    return SeriesList(
        model=ModelRef(name=model.name, version=model.version),
        series=[SeriesInfo(**s) for s in model.runtime.series()],
    )


@router.post(
    "/forecast",
    response_model=ForecastResponse,
    responses=ERRORS,
    summary="Forecast one series with intervals.",
)
async def forecast(body: ForecastRequest, champions: ChampionsDep, _: ReadScope) -> ForecastResponse:
    model = champions.forecaster
    out = await run_in_threadpool(model.runtime.forecast, body.series, body.horizon)
    return ForecastResponse(
        model=ModelRef(name=model.name, version=model.version),
        series=out["series"],
        chosen_model=out["model"],
        level=int(out["level"]),
        points=[ForecastPoint(**p) for p in out["points"]],
    )


@router.get(
    "/signals", response_model=SignalList, responses=ERRORS, summary="Recent meaningful changes, ranked."
)
def signals(
    champions: ChampionsDep,
    _: ReadScope,
    since: Annotated[dt.date | None, Query(description="Only changes on or after this date.")] = None,
    kind: Annotated[str | None, Query(pattern="^(shift|outlier)$", description="shift or outlier")] = None,
) -> SignalList:
    model = champions.forecaster
    rows = model.runtime.signals(since=since)
    if kind is not None:
        rows = [r for r in rows if r.get("kind") == kind]
    return SignalList(
        model=ModelRef(name=model.name, version=model.version), signals=[Signal(**r) for r in rows]
    )


@router.get(
    "/signals/{signal_id}/causes",
    response_model=SignalCauses,
    responses={**ERRORS, 404: {"model": ErrorBody, "description": "No explained shift with this id."}},
    summary="Why it moved: one shift's candidate causes, ranked, with their evidence.",
)
def signal_causes(
    signal_id: Annotated[str, Path(min_length=1, max_length=100, description="An id from GET /v1/signals.")],
    champions: ChampionsDep,
    _: ReadScope,
) -> SignalCauses:
    model = champions.forecaster
    found = model.runtime.causes(signal_id)
    return SignalCauses(
        model=ModelRef(name=model.name, version=model.version),
        **{
            k: found.get(k)
            for k in ("id", "series", "indicator", "date", "direction", "magnitude", "confidence")
        },
        verdict=found["verdict"],
        causes=[SignalCause(**{k: c.get(k) for k in SignalCause.model_fields}) for c in found["causes"]],
        detail=found.get("detail"),
        aliases=list(found.get("aliases") or []),
        date_range=found.get("date_range"),
    )


@router.get(
    "/warnings",
    response_model=WarningList,
    responses=ERRORS,
    summary="Early warnings: chance of crossing a threshold.",
)
def warnings(champions: ChampionsDep, _: ReadScope) -> WarningList:
    model = champions.forecaster
    return WarningList(
        model=ModelRef(name=model.name, version=model.version),
        warnings=[EarlyWarning(**w) for w in model.runtime.warnings()],
    )


@router.get(
    "/indicators/{series:path}/plot.png",
    responses={
        **ERRORS,
        200: {"content": {"image/png": {}}, "description": "History, forecast, interval, shifts."},
    },
    summary="A chart of one series for people.",
)
async def plot(
    series: Annotated[str, Path(min_length=1, max_length=300)], champions: ChampionsDep, _: ReadScope
) -> Response:
    model = champions.forecaster
    png = await run_in_threadpool(model.runtime.plot_png, series)
    return Response(png, media_type="image/png")
