from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from ml.errors import InputError, ModelUnavailableError
from ml.io.schemas import Experiment
from ml.registry.names import FORECASTER_MODEL as FORECASTER
from ml.registry.runs import get_recorded, list_recorded, recorded_plot
from serving.deps import ChampionsDep, SettingsDep, StoreDep
from serving.models import ModelStore
from serving.routes.incidents import ERRORS
from serving.schemas import (
    ExperimentLoad,
    ExperimentPlanOut,
    ExperimentResult,
    PlanRequest,
    RecordedExperiment,
    RecordedExperimentList,
    ScoreRequest,
)
from serving.security import ReadScope

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])

ExperimentId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[\w.:-]+$")]


def _recorded_spans(tracking_uri: str) -> tuple[list[dict[str, Any]], list[Any]]:
    """Recorded experiments (latest scoring) and their spans in time and slice, for overlaps and load."""
    from ml.experiments.hygiene import ExperimentSpan

    rows = list_recorded(tracking_uri)
    return rows, [s for s in (ExperimentSpan.from_record(r) for r in rows) if s is not None]


def _score(body: ScoreRequest, champions: ChampionsDep, tracking_uri: str) -> dict[str, Any]:
    import pandas as pd

    from ml.experiments.impact import ImpactScorer
    from ml.io.schemas import series_key

    try:
        exp = Experiment.model_validate(body.experiment.model_dump())
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ())) or "experiment"
        raise InputError(f"experiment: {field}: {err.get('msg')}", field=field) from None
    if body.data is not None:
        from ml.indicators.completion import complete_counts

        given = pd.DataFrame(
            [
                {
                    "series": series_key(o.indicator, team=o.team, service=o.service),
                    "indicator": o.indicator,
                    "ds": o.ds,
                    "y": o.y,
                }
                for o in body.data
            ],
            columns=["series", "indicator", "ds", "y"],
        )
        # as `recur experiment score` reads its files: an absent date of a sparse count is a 0
        data = complete_counts(given, ["series"])[0][["series", "ds", "y"]]
    else:
        data = champions.forecaster.runtime.history[["series", "ds", "y"]]
    from ml.experiments.hygiene import overlaps_with
    from ml.indicators.completion import service_owners, slice_totals

    result = ImpactScorer().score(exp, slice_totals(data, (exp.dimension,)))
    _, spans = _recorded_spans(tracking_uri)
    owners = service_owners(data["series"].unique())
    overlaps = [o.model_dump(mode="json") for o in overlaps_with(exp, spans, owners)]
    return {**result.model_dump(mode="json"), "overlaps": overlaps}


@router.post(
    "/score",
    response_model=ExperimentResult,
    responses=ERRORS,
    summary="Score an experiment: effect, 95% interval, p-value and verdict (nothing is recorded).",
)
async def score(
    body: ScoreRequest, champions: ChampionsDep, settings: SettingsDep, _: ReadScope
) -> dict[str, Any]:
    return await run_in_threadpool(_score, body, champions, settings.tracking_uri)


def _plan(body: PlanRequest, champions: ChampionsDep, tracking_uri: str) -> dict[str, Any]:
    from ml.experiments.planning import past_from_records, plan_experiment, resolve_treated
    from ml.indicators.completion import slice_totals

    rows, spans = _recorded_spans(tracking_uri)
    history = champions.forecaster.runtime.history[["series", "ds", "y"]]
    dimension, value = resolve_treated(body.treated, history["series"].unique(), body.indicator)
    plan = plan_experiment(
        slice_totals(history, (dimension,)),
        indicator=body.indicator,
        treated=value,
        dimension=dimension,
        controls=body.controls,
        weeks=body.weeks,
        direction=body.direction,
        hypothesis=body.hypothesis,
        past=past_from_records(rows, body.indicator),
        running=spans,
    )
    return plan.model_dump(mode="json")


@router.post(
    "/plan",
    response_model=ExperimentPlanOut,
    responses=ERRORS,
    summary="Plan an experiment: minimum detectable effect at 80% power, power, likely effect from the past.",
)
async def plan(
    body: PlanRequest, champions: ChampionsDep, settings: SettingsDep, _: ReadScope
) -> dict[str, Any]:
    return await run_in_threadpool(_plan, body, champions, settings.tracking_uri)


@router.get(
    "",
    response_model=RecordedExperimentList,
    responses=ERRORS,
    summary="Recorded experiments (latest scoring).",
)
async def list_experiments(settings: SettingsDep, store: StoreDep, _: ReadScope) -> RecordedExperimentList:
    import datetime as dt

    from ml.experiments.hygiene import experiment_load

    rows, spans = await run_in_threadpool(_recorded_spans, settings.tracking_uri)
    load = experiment_load(spans, dt.datetime.now(dt.UTC).date(), _owners(store))
    return RecordedExperimentList(
        experiments=[RecordedExperiment(**r) for r in rows],
        load=[ExperimentLoad.model_validate(x.model_dump()) for x in load],
    )


@router.get(
    "/{experiment_id}",
    response_model=RecordedExperiment,
    responses=ERRORS,
    summary="One recorded experiment.",
)
async def get_experiment(experiment_id: ExperimentId, settings: SettingsDep, _: ReadScope) -> dict[str, Any]:
    out = await run_in_threadpool(get_recorded, settings.tracking_uri, experiment_id)
    out["plot"] = f"/v1/experiments/{experiment_id}/plot.png"
    return out


@router.get(
    "/{experiment_id}/plot.png",
    responses={
        **ERRORS,
        200: {"content": {"image/png": {}}, "description": "Before/after/counterfactual plot."},
    },
    summary="The before/after/counterfactual plot of a recorded experiment.",
)
async def plot(experiment_id: ExperimentId, settings: SettingsDep, _: ReadScope) -> Response:
    png = await run_in_threadpool(recorded_plot, settings.tracking_uri, experiment_id)
    return Response(png, media_type="image/png")


def _owners(store: ModelStore) -> dict[str, set[str]]:
    """Which teams run each service, from the forecaster champion's history when one is loaded (none: {}), so
    that an experiment on a service counts in its teams' load."""
    from ml.indicators.completion import service_owners

    try:
        history = store.get(FORECASTER).runtime.history
    except ModelUnavailableError:
        return {}
    return service_owners(history["series"].unique())
