"""Process experiments: score each against its indicator and record it as an MLflow run.

Runs live in the MLflow experiment ``process-experiments``: the hypothesis, owner and verdict as tags, the
figures as metrics, the before/after/counterfactual plot and the full result as artifacts. Re-scoring adds a new
run with the same ``recur.experiment_id`` tag and a ``recur.previous_run_id`` link to the run before it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from ml.errors import InputError, RecurError, StrictModeError
from ml.indicators.completion import service_owners, slice_totals
from ml.io.readers import read_indicators
from ml.io.schemas import Experiment
from ml.registry.names import EXPERIMENTS_EXPERIMENT as EXPERIMENT
from ml.registry.runs import latest_runs, list_recorded
from training import tracking
from training.ingest import indicator_history, load_experiments, load_indicators
from training.settings import Settings

log = logging.getLogger(__name__)

SUMMARY_FIELDS = ("id", "effect", "relative_effect", "ci_low", "ci_high", "p_value", "verdict", "calibration")


def result_row(exp: Experiment, result: Any) -> dict[str, Any]:
    d = result.model_dump(mode="json", exclude={"series"})
    return {"id": exp.id, "name": exp.name, **d}


def _log_run(settings: Settings, exp: Experiment, result: Any, previous: str | None) -> str:
    from ml.experiments.impact import plot_impact
    from ml.reporting.plots import unit_of

    tags = {
        "recur.experiment_id": exp.id,
        "recur.job": "experiment score",
        "hypothesis.problem": exp.hypothesis.problem,
        "hypothesis.solution": exp.hypothesis.solution,
        "hypothesis.metric": exp.hypothesis.metric,
        "owner": exp.owner or "",
        "indicator": exp.indicator,
        "treated": exp.treated_series,
        "verdict": result.verdict,
    }
    if previous:
        tags["recur.previous_run_id"] = previous
    with tracking.run(EXPERIMENT, settings, run_name=f"{exp.id} {exp.name}"[:250], tags=tags) as run:
        mlflow.log_params(
            {
                "start": exp.start.isoformat(),
                "end": exp.end.isoformat() if exp.end else "open",
                "dimension": exp.dimension,
                "controls": ",".join(exp.controls) or "none",
                "desired_direction": exp.desired_direction,
                "min_effect": str(exp.min_effect),
                "method": result.method[:500],
                "calibration": result.calibration.method,
                "calibration_reason": result.calibration.reason[:500],
            }
        )
        figures = {
            k: getattr(result, k)
            for k in (
                "effect",
                "ci_low",
                "ci_high",
                "relative_effect",
                "cumulative_effect",
                "p_value",
                "mde",
                "weeks_needed",
                "n_pre",
                "n_post",
                "observed_mean",
                "counterfactual_mean",
            )
        }
        figures["calibration_factor"] = result.calibration.factor
        figures["calibration_placebos"] = result.calibration.n_placebos
        mlflow.log_metrics({k: float(v) for k, v in figures.items() if v is not None})
        diag = result.diagnostics
        if diag.did is not None:
            mlflow.log_metrics(
                {"did_effect": float(diag.did.estimate), "did_p_value": float(diag.did.p_value)}
            )
        mlflow.log_metric("mann_whitney_p_value", float(diag.mann_whitney.p_value))
        mlflow.log_dict(
            {"experiment": exp.model_dump(mode="json"), "result": result.model_dump(mode="json")},
            "result.json",
        )
        fig = plot_impact(result, units=unit_of(exp.indicator))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "impact.png"
            fig.savefig(path, dpi=110)
            mlflow.log_artifact(str(path))
        return run.info.run_id


def score_experiments(
    settings: Settings,
    indicators_paths: Sequence[Path],
    experiments_paths: Sequence[Path],
    *,
    record: bool = True,
    strict: bool = False,
) -> dict[str, Any]:
    """Score every valid experiment; one bad experiment (missing series, too short) is reported, not fatal."""
    from ml.experiments.hygiene import find_overlaps
    from ml.experiments.impact import ImpactScorer

    exps = load_experiments(list(experiments_paths))  # redacted, once, here
    inds = read_indicators(list(indicators_paths))
    rejects = exps.rejects + inds.rejects
    if strict and rejects:
        raise StrictModeError(f"{len(rejects)} input record(s) rejected (first: {rejects[0]})", field="input")
    if not inds.records:
        raise InputError("no valid indicator observations", field="indicators")
    data, completed = indicator_history(inds)
    base = data[["series", "ds", "y"]]
    # a team's (or a service's) experiment on indicators split by both: the totals of its own dimension
    data_of = totals_by_dimension(base, exps.records)
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    latest: dict[str, Any] = {}
    overlaps = find_overlaps(exps.records, service_owners(base["series"].unique()))
    if record:
        tracking.configure(settings)
        exp_id = tracking.ensure_experiment(EXPERIMENT, settings)
        latest = latest_runs(MlflowClient(), exp_id)
    for exp in exps.records:
        try:
            result = ImpactScorer().score(exp, data_of[exp.dimension])
        except RecurError as exc:
            log.warning("Experiments - %s: %s", exp.id, exc.message)
            errors.append({"id": exp.id, "field": exc.field, "error": exc.message})
            continue
        row = result_row(exp, result)
        row["overlaps"] = [o.model_dump(mode="json") for o in overlaps.get(exp.id, [])]
        if record:
            prev = latest.get(exp.id)
            row["run_id"] = _log_run(settings, exp, result, prev.info.run_id if prev else None)
        results.append(row)
    return {
        "results": results,
        "errors": errors,
        "quarantined": [str(r) for r in rejects],
        "notes": completed,
    }


def list_experiments(
    settings: Settings, as_of: dt.date | None = None, indicators_paths: Sequence[Path] = ()
) -> dict[str, Any]:
    """The latest scoring of every recorded experiment, and the experiment load per team (as of today); with
    `indicators_paths` split by team and service, an experiment on a service counts for the teams that run it."""
    from ml.experiments.hygiene import ExperimentSpan, experiment_load

    owners: dict[str, set[str]] = {}
    if indicators_paths:
        history, _ = indicator_history(load_indicators(indicators_paths))
        owners = service_owners(history["series"].unique())
    rows = list_recorded(settings.tracking_uri)
    spans = [s for s in (ExperimentSpan.from_record(r) for r in rows) if s is not None]
    load = experiment_load(spans, as_of or dt.datetime.now(dt.UTC).date(), owners)
    return {"experiments": rows, "load": [x.model_dump(mode="json") for x in load]}


def plan_experiment(
    settings: Settings,
    indicators_paths: Sequence[Path],
    *,
    indicator: str,
    treated: str,
    controls: Sequence[str] = (),
    weeks: int,
    direction: str,
    hypothesis: str | None = None,
    experiments_paths: Sequence[Path] = (),
) -> dict[str, Any]:
    """Plan an experiment on the indicator history in `indicators_paths` (``treated`` is ``team=VALUE``,
    ``service=VALUE`` or a pair, :func:`ml.experiments.planning.resolve_treated`). Past experiments: those in
    `experiments_paths`, scored here (nothing recorded), else the recorded ones (MLflow); the recorded ones are
    also checked for overlaps with the planned experiment (a team and a service meet where the indicators show
    the team runs it)."""
    from ml.experiments.hygiene import ExperimentSpan
    from ml.experiments.planning import check_plan_args, parse_treated, past_from_records, resolve_treated
    from ml.experiments.planning import plan_experiment as plan

    check_plan_args(weeks, direction)
    parse_treated(treated)  # its form, before any file is read (a pair is resolved on the indicators)
    inds = load_indicators(indicators_paths)
    history, completed = indicator_history(inds)
    base = history[["series", "ds", "y"]]
    dimension, value = resolve_treated(treated, base["series"].unique(), indicator)
    data = slice_totals(base, (dimension,))
    rows = list_recorded(settings.tracking_uri)
    past = past_from_records(rows, indicator)
    running = [s for s in (ExperimentSpan.from_record(r) for r in rows) if s is not None]
    if experiments_paths:
        given = load_experiments(list(experiments_paths)).records
        past = score_past(base, given, indicator)
        running += [ExperimentSpan.of(e) for e in given if e.id not in {s.id for s in running}]
    out = plan(
        data,
        indicator=indicator,
        treated=value,
        dimension=dimension,
        controls=[c.strip() for cs in controls for c in cs.split(",") if c.strip()],
        weeks=weeks,
        direction=direction,  # type: ignore[arg-type]
        hypothesis=hypothesis,
        past=past,
        running=running,
    )
    planned = out.model_dump(mode="json")
    planned["notes"] = [*completed, *planned.get("notes", [])]
    return planned


def totals_by_dimension(history: Any, experiments: Sequence[Experiment]) -> dict[str, Any]:
    """``history`` with the totals of each dimension the `experiments` treat
    (:func:`~ml.indicators.completion.slice_totals`), by dimension: each experiment is scored among the series of
    its own dimension."""
    return {dim: slice_totals(history, (dim,)) for dim in sorted({e.dimension for e in experiments})}


def score_past(history: Any, experiments: Sequence[Experiment], indicator: str) -> list[Any]:
    """Score the `experiments` on `indicator` (nothing recorded), each on `history` with the totals of its own
    dimension (:func:`~ml.indicators.completion.slice_totals`); their effects."""
    from ml.experiments.impact import ImpactScorer
    from ml.experiments.planning import PastEffect

    mine = [exp for exp in experiments if exp.indicator == indicator]
    data_of = totals_by_dimension(history, mine)
    out = []
    for exp in mine:
        try:
            r = ImpactScorer().score(exp, data_of[exp.dimension])
        except RecurError as exc:
            log.warning("Plan - past experiment %s not scored: %s", exp.id, exc.message)
            continue
        se = (r.ci_high - r.ci_low) / (2 * 1.959963984540054)
        out.append(
            PastEffect(
                id=exp.id,
                treated=r.treated_series,
                desired_direction=exp.desired_direction,
                effect=r.effect,
                se=se,
            )
        )
    return out


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)
