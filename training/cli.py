"""The ``recur`` command line: validate data, train and promote models, score experiments, report, serve."""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ml.errors import RecurError
from ml.io.readers import ReadResult, Reject, detect_kind, read_path, unrecognised

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(
    name="recur",
    help="Recur: learn from incidents so that failures stop recurring.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain click usage errors and help: an error is one line, never boxed or wrapped
)


def _console(stream: TextIO) -> Console:
    """Messages are never wrapped (scripts grep them): soft wrap always, and when the stream is not a terminal a
    width no table row reaches, whatever COLUMNS says."""
    return Console(file=stream, soft_wrap=True, width=None if stream.isatty() else _PIPE_WIDTH)


_PIPE_WIDTH = 100_000
console = _console(sys.stdout)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress (INFO) to stderr.")] = False,
) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler], force=True)
    logging.captureWarnings(True)  # library warnings too go through the one-line formatter
    for noisy in ("cmdstanpy", "prophet", "mlflow", "urllib3", "alembic", "numba", "distributed"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class OneLineFormatter(logging.Formatter):
    """Every log record is exactly one line: line breaks in the message (or a traceback) are escaped as ``\\n``."""

    def format(self, record: logging.LogRecord) -> str:
        return one_line(super().format(record))


def one_line(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip("\n").replace("\n", "\\n")


def say_error(message: str, label: str = "error") -> None:
    """One plain line on stderr: no markup (a path may hold brackets), no wrapping."""
    sys.stderr.write(f"{label}: {one_line(message)}\n")
    sys.stderr.flush()


def fail(message: str, code: int = 1) -> None:
    say_error(message)
    raise typer.Exit(code)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# ------------------------------------------------------------------------------------------------- validate


def _rejects_table(results: list[ReadResult[Any]], unknown: list[Reject]) -> Table:
    table = Table(title="Quarantined records", show_lines=False)
    for col in ("file", "line", "record", "field", "reason"):
        table.add_column(col, overflow="fold")
    for res in [*results, ReadResult(kind="incidents", rejects=unknown)]:
        for r in res.rejects:
            table.add_row(
                *(
                    escape(c)
                    for c in (
                        r.file,
                        "" if r.line is None else str(r.line),
                        r.record or "",
                        r.field or "",
                        r.reason,
                    )
                )
            )
    return table


@app.command()
def validate(
    paths: Annotated[
        list[Path], typer.Argument(help="Files or folders: incidents, indicators, experiments, a change log.")
    ],
    json_out: JsonOpt = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit with code 2 if any record is rejected.")
    ] = False,
) -> None:
    """Validate data files: counts per file and a table of every quarantined record (file, line, field, reason)."""
    results: list[ReadResult[Any]] = []
    unknown: list[Reject] = []  # files no reader recognises: quarantined by name, so --strict fails on them
    for p in paths:
        if not p.exists():
            fail(f"{p}: no such file or folder")
        kind = detect_kind(p)
        if kind is None:
            unknown.append(unrecognised(p))
            continue
        try:
            results.append(read_path(p, kind))
        except RecurError as exc:
            fail(exc.message)
    total_rejects = sum(r.quarantined for r in results) + len(unknown)
    overlaps = _experiment_overlaps(results)
    if json_out:
        emit_json(
            {
                "results": [r.summary() for r in results],
                "unrecognised": [asdict(u) for u in unknown],
                "quarantined": total_rejects,
                "overlaps": [{"id": eid, **o.model_dump(mode="json")} for eid, o in overlaps],
            }
        )
    else:
        table = Table(title="Validation")
        for col in ("source", "kind", "records in", "accepted", "quarantined", "notes"):
            table.add_column(
                col, justify="right" if col not in ("source", "kind") else "left", overflow="fold"
            )
        for r in results:
            table.add_row(
                escape(", ".join(r.sources)),
                r.kind,
                str(r.records_in),
                str(r.accepted),
                str(r.quarantined),
                str(len(r.notes)),
            )
        console.print(table)
        if total_rejects:
            console.print(_rejects_table(results, unknown))
        else:
            console.print("[green]No rejects.[/]")
        for eid, o in overlaps:
            console.print(
                f"[yellow]warning[/]: {escape(eid)} overlaps {escape(o.other_id)}: {escape(o.reason)}"
            )
    if strict and total_rejects:
        raise typer.Exit(2)


def _experiment_overlaps(results: list[ReadResult[Any]]) -> list[tuple[str, Any]]:
    """Each pair of experiments (across the files read) that overlap in time and slice, once."""
    from ml.experiments.hygiene import overlap_pairs

    exps = [e for r in results if r.kind == "experiments" for e in r.records]
    return overlap_pairs(exps)


# ------------------------------------------------------------------------------------------------- train

train_app = typer.Typer(
    help="Train models on your data, log them to MLflow and register them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(train_app, name="train")

PromoteOpt = Annotated[
    bool,
    typer.Option(
        "--promote", help="Move the 'champion' alias to the new version if it passes the quality gate."
    ),
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Also write the outputs (CSV, JSON, plots) to this folder.")
]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Fail (exit 2) if any input record is rejected.")]


def _settings() -> Any:
    from training.settings import SettingsError, get_settings

    try:
        return get_settings()
    except SettingsError as exc:
        fail(str(exc), code=2)


def _run_job(fn: Any, json_out: bool, **kwargs: Any) -> dict[str, Any]:
    from mlflow.exceptions import MlflowException

    from ml.errors import StrictModeError

    try:
        return fn(_settings(), **kwargs)
    except StrictModeError as exc:
        fail(exc.message, code=2)
    except RecurError as exc:
        fail(exc.message)
    except MlflowException as exc:
        fail(f"MLflow ({_settings().tracking_uri}): {exc.message}")
    raise AssertionError("unreachable")


def _print_patterns(result: dict[str, Any]) -> None:
    m = result["metrics"]
    console.print(
        f"[bold]incident-patterns[/] v{result['version']} (run {result['run_id'][:8]}): "
        f"{int(m['n_patterns'])} patterns, {100 * m.get('noise_fraction', 0):.1f}% unclustered"
        + (f", ARI {m['ari']:.3f}" if "ari" in m else "")
        + (f", NMI {m['nmi']:.3f}" if "nmi" in m else "")
    )
    table = Table(title="Failure patterns")
    for col in ("id", "name", "size", "trend"):
        table.add_column(col)
    for p in result["patterns"]:
        table.add_row(str(p["id"]), escape(p["name"]), str(p["size"]), p["trend"])
    console.print(table)
    _print_promotion(result)


def _print_promotion(result: dict[str, Any]) -> None:
    promo = result.get("promotion")
    if promo is None:
        console.print("registered as [cyan]candidate[/]; not promoted (use --promote)")
    elif promo["promoted"]:
        console.print(f"[green]promoted to champion[/]: {escape(promo['reason'])}")
    else:
        console.print(f"[yellow]not promoted[/]: {escape(promo['reason'])}")


@train_app.command("patterns")
def train_patterns_cmd(
    incidents: Annotated[
        list[Path],
        typer.Option("--incidents", help="Incidents: JSONL, JSON, CSV or a Markdown folder (repeatable)."),
    ],
    out: OutOpt = None,
    promote: PromoteOpt = False,
    strict: StrictOpt = False,
    seed: Annotated[int, typer.Option(help="Random seed (same input and seed give the same patterns).")] = 42,
    min_cluster_size: Annotated[
        int | None,
        typer.Option(
            min=2,
            help=(
                "Smallest pattern: runs UMAP + HDBSCAN with this min_cluster_size "
                "(default: the most stable cut of an average-linkage tree, chosen from the data)."
            ),
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Mine failure patterns from postmortems; register `incident-patterns` in MLflow."""
    from training.patterns import train_patterns

    result = _run_job(
        train_patterns,
        json_out,
        incidents_paths=incidents,
        out=out,
        promote=promote,
        strict=strict,
        seed=seed,
        min_cluster_size=min_cluster_size,
        show_progress=not json_out,
    )
    if json_out:
        emit_json(result)
    else:
        _print_patterns(result)


def _print_indicators(result: dict[str, Any]) -> None:
    for note in result.get("notes") or []:
        say_error(note, label="note")
    m = result["metrics"]
    console.print(
        f"[bold]indicator-forecaster[/] v{result['version']} (run {result['run_id'][:8]}): "
        f"{int(m['n_series'])} series, mean backtest MASE {m.get('mean_mase_selected', float('nan')):.3f} "
        f"(seasonal naive {m.get('mean_mase_baseline', float('nan')):.3f}), {int(m['n_signals'])} signals"
    )
    table = Table(title="Model chosen per series (by rolling-origin backtest)")
    for col in ("series", "model", "MASE", "naive MASE", "why"):
        table.add_column(col, overflow="fold")
    for r in result["series"]:
        mase = "" if r["mase"] is None else f"{r['mase']:.3f}"
        base = "" if r["baseline_mase"] is None else f"{r['baseline_mase']:.3f}"
        table.add_row(escape(r["series"]), str(r["chosen"]), mase, base, escape(str(r["reason"])))
    console.print(table)
    why = result.get("explanations")
    if why:
        console.print(
            f"[bold]why it moved[/]: {why['shifts']} shifts, {why['explained']} explained, "
            f"{why['no_convincing_cause']} with no convincing cause (`recur explain` for the causes)"
        )
    _print_promotion(result)


@train_app.command("indicators")
def train_indicators_cmd(
    indicators: Annotated[
        list[Path], typer.Option("--indicators", help="Indicator observations: CSV or Parquet.")
    ],
    horizon: Annotated[
        int | None, typer.Option(min=1, help="Steps to forecast (default 13 weeks / 28 days).")
    ] = None,
    out: OutOpt = None,
    executor: Annotated[
        str,
        typer.Option(help="local (processes), serial, dask://local or dask://HOST:PORT (a Dask scheduler)."),
    ] = "local",
    thresholds: Annotated[
        Path | None,
        typer.Option(help="YAML list of early-warning thresholds {indicator|series, value, direction}."),
    ] = None,
    candidates: Annotated[
        list[str] | None,
        typer.Option(
            "--candidate",
            help="Restrict the candidates (seasonal_naive, auto_ets, auto_theta, auto_arima, prophet).",
        ),
    ] = None,
    promote: PromoteOpt = False,
    strict: StrictOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Forecast leading indicators, detect shifts; register `indicator-forecaster` in MLflow."""
    from training.indicators import train_indicators

    result = _run_job(
        train_indicators,
        json_out,
        indicators_paths=indicators,
        horizon=horizon,
        out=out,
        executor=executor,
        promote=promote,
        strict=strict,
        candidates=candidates,
        thresholds_path=thresholds,
    )
    if json_out:
        emit_json(result)
    else:
        _print_indicators(result)


# ------------------------------------------------------------------------------------------------- experiment

experiment_app = typer.Typer(
    help="Score process experiments and list their verdicts.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(experiment_app, name="experiment")


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return ""
    if pct:
        return f"{100 * v:+.1f}%"
    return f"{v:.4g}"


@experiment_app.command("score")
def experiment_score(
    indicators: Annotated[
        list[Path], typer.Option("--indicators", help="Indicator observations: CSV or Parquet.")
    ],
    experiments: Annotated[
        list[Path], typer.Option("--experiments", help="Experiment definitions: YAML or JSON.")
    ],
    no_record: Annotated[
        bool, typer.Option("--no-record", help="Do not record the scores as MLflow runs.")
    ] = False,
    strict: StrictOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Did each process change move its indicator? Effect, 95% interval, p-value and verdict per experiment."""
    from training.experiments import SUMMARY_FIELDS, score_experiments

    out = _run_job(
        score_experiments,
        json_out,
        indicators_paths=indicators,
        experiments_paths=experiments,
        record=not no_record,
        strict=strict,
    )
    if json_out:
        emit_json({**out, "summary": [{k: r[k] for k in SUMMARY_FIELDS} for r in out["results"]]})
        return
    for note in out.get("notes") or []:
        say_error(note, label="note")
    table = Table(title="Experiments")
    for col in (
        "id",
        "effect",
        "relative_effect",
        "ci_low",
        "ci_high",
        "p_value",
        "verdict",
        "mde",
        "weeks_needed",
        "overlaps",
    ):
        table.add_column(col, justify="left" if col in ("id", "verdict", "overlaps") else "right")
    colour = {"improved": "green", "worsened": "red", "inconclusive": "yellow"}
    for r in out["results"]:
        table.add_row(
            escape(str(r["id"])),
            _fmt(r["effect"]),
            _fmt(r["relative_effect"], pct=True),
            _fmt(r["ci_low"]),
            _fmt(r["ci_high"]),
            f"{r['p_value']:.3f}",
            f"[{colour[r['verdict']]}]{r['verdict']}[/]",
            _fmt(r["mde"]),
            "" if r["weeks_needed"] is None else str(r["weeks_needed"]),
            escape(", ".join(o["other_id"] for o in r["overlaps"])),
        )
    console.print(table)
    for r in out["results"]:
        console.print(f"{escape(str(r['id']))} interval: {escape(str(r['calibration']['reason']))}")
    for r in out["results"]:
        for o in r["overlaps"]:
            console.print(f"[yellow]overlap[/] {escape(str(r['id']))}: {escape(o['reason'])}")
    for e in out["errors"]:
        console.print(f"[red]could not score[/] {escape(str(e['id']))}: {escape(str(e['error']))}")
    for q in out["quarantined"]:
        console.print(f"[yellow]quarantined[/] {escape(str(q))}")


@experiment_app.command("list")
def experiment_list(
    indicators: Annotated[
        list[Path] | None,
        typer.Option(
            "--indicators",
            help="Indicator history split by team and service: an experiment on a service then counts in the "
            "load of the teams that run it.",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """The latest verdict of every experiment recorded in MLflow, and the experiment load per slice."""
    from training.experiments import list_experiments

    out = _run_job(lambda settings: list_experiments(settings, indicators_paths=indicators or []), json_out)
    if json_out:
        emit_json(out)
        return
    rows = out["experiments"]
    if not rows:
        console.print("No experiment recorded yet: run `recur experiment score`.")
        return
    table = Table(title="Recorded experiments (latest scoring)")
    for col in ("id", "name", "treated", "verdict", "effect", "95% CI", "p", "scored at"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            escape(str(r["id"])),
            escape(str(r["name"])),
            escape(r["treated"] or ""),
            r["verdict"] or "",
            _fmt(r["effect"]),
            f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]",
            _fmt(r["p_value"]),
            r["scored_at"][:16],
        )
    console.print(table)
    load = Table(title="Experiment load (experiments running at once, per week)")
    for col in ("slice", "now", "max", "max in week of", "running now"):
        load.add_column(col, justify="right" if col in ("now", "max") else "left", overflow="fold")
    for x in out["load"]:
        load.add_row(
            escape(x["slice"]),
            str(x["current"]),
            str(x["max"]),
            str(x["max_week"] or ""),
            escape(", ".join(x["running"])),
        )
    console.print(load)


@experiment_app.command("plan")
def experiment_plan(
    indicators: Annotated[
        list[Path], typer.Option("--indicators", help="Indicator history: CSV or Parquet.")
    ],
    indicator: Annotated[str, typer.Option("--indicator", help="The indicator to move, e.g. incidents.")],
    treated: Annotated[
        str,
        typer.Option(
            "--treated",
            help="The treated slice: team=VALUE, service=VALUE, or team=VALUE,service=VALUE for a service that "
            "team alone runs.",
        ),
    ],
    weeks: Annotated[int, typer.Option("--weeks", help="Planned duration in weeks (1 to 104).")],
    direction: Annotated[
        str, typer.Option("--direction", help="Desired direction of the indicator: increase or decrease.")
    ],
    controls: Annotated[
        list[str] | None,
        typer.Option(
            "--controls", help="Control slices' values (same dimension), repeated or comma-separated."
        ),
    ] = None,
    hypothesis: Annotated[str | None, typer.Option("--hypothesis", help="What the change should do.")] = None,
    experiments: Annotated[
        list[Path] | None,
        typer.Option(
            "--experiments",
            help="Past experiments to learn the likely effect from (default: the recorded ones).",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Before launch: the minimum detectable effect (80% power, alpha 0.05) and the likely effect from the past."""
    from training.experiments import plan_experiment

    p = _run_job(
        plan_experiment,
        json_out,
        indicators_paths=indicators,
        indicator=indicator,
        treated=treated,
        controls=controls or [],
        weeks=weeks,
        direction=direction,
        hypothesis=hypothesis,
        experiments_paths=experiments or [],
    )
    if json_out:
        emit_json(p)
        return
    rel = "" if p["mde_relative"] is None else f" ({100 * p['mde_relative']:.1f}% of the recent level)"
    console.print(
        f"Plan: {escape(p['treated_series'])} for {p['weeks']} week(s) from {p['start']},"
        f" {p['desired_direction']} desired; {p['n_pre']} weeks of history, recent level {p['baseline_mean']:.4g}"
    )
    console.print(
        f"Minimum detectable effect (80% power, alpha {p['alpha']:g}): {p['mde']:.4g} per week{rel}"
    )
    table = Table(title="Power")
    for col in ("effect", "per week", "power"):
        table.add_column(col, justify="left" if col == "effect" else "right")
    for x in p["power"]:
        table.add_row(x["label"], f"{x['effect']:.4g}", f"{100 * x['power']:.0f}%")
    console.print(table)
    lk = p["likely"]
    if lk["effect"] is not None:
        console.print(f"Likely effect: {lk['effect']:.4g} per week [{lk['ci_low']:.4g}, {lk['ci_high']:.4g}]")
        needed = p["weeks_needed"]
        console.print(
            "Weeks needed for 80% power at the likely effect: "
            + (str(needed) if needed is not None else "more than 104")
        )
    console.print(escape(lk["note"]))
    for o in p["overlaps"]:
        console.print(f"[yellow]overlap[/] {escape(o['reason'])}")
    for n in p["notes"]:
        console.print(escape(n))


# ------------------------------------------------------------------------------------------------- all


@train_app.command("all")
def train_all(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="A folder with incidents.jsonl, indicators.csv, experiments.yaml[, changes.csv] (default: "
            "RECUR_DATA_DIR, the sample).",
        ),
    ] = None,
    promote: PromoteOpt = False,
    executor: Annotated[
        str, typer.Option(help="Executor for the indicator fits (see `train indicators`).")
    ] = "local",
    json_out: JsonOpt = False,
) -> None:
    """Train every model on a data folder: patterns, indicators (with the causes of their shifts); then score
    its experiments."""
    from training.experiments import score_experiments
    from training.indicators import train_indicators
    from training.patterns import train_patterns

    data = data or _settings().data_dir
    if not data.is_dir():
        fail(f"--data: {data} is not a folder")
    incidents = [
        p for p in (data / "incidents.jsonl", data / "incidents.csv", data / "postmortems") if p.exists()
    ]
    indicators = [p for p in (data / "indicators.csv", data / "indicators.parquet") if p.exists()]
    experiments = [p for p in (data / "experiments.yaml", data / "experiments.json") if p.exists()]
    changes = [p for p in (data / "changes.csv",) if p.exists()]
    thresholds = data / "config" / "thresholds.yaml"
    results: dict[str, Any] = {}
    if incidents:
        results["patterns"] = _run_job(
            train_patterns, json_out, incidents_paths=incidents, promote=promote, show_progress=not json_out
        )
        if not json_out:
            _print_patterns(results["patterns"])
    elif json_out:  # stdout holds the JSON alone
        say_error(f"no incidents in {data}: pattern model not trained", label="note")
    else:
        console.print(f"[yellow]no incidents in {escape(str(data))}: pattern model not trained[/]")
    if indicators:
        from training.explain import gather_inputs

        # The shifts' causes, stored with the forecaster: incidents' patterns from the model just trained.
        why = _run_job(
            gather_inputs,
            json_out,
            incidents_paths=incidents if "patterns" in results else [],
            experiments_paths=experiments,
            changes_paths=changes,
            patterns_version=results["patterns"]["version"] if "patterns" in results else None,
        )
        results["indicators"] = _run_job(
            train_indicators,
            json_out,
            indicators_paths=indicators,
            executor=executor,
            promote=promote,
            thresholds_path=thresholds if thresholds.exists() else None,
            explain_inputs=why,
        )
        if not json_out:
            _print_indicators(results["indicators"])
        if experiments:
            results["experiments"] = _run_job(
                score_experiments, json_out, indicators_paths=indicators, experiments_paths=experiments
            )
            if not json_out:
                n = len(results["experiments"]["results"])
                verdicts = [r["verdict"] for r in results["experiments"]["results"]]
                console.print(
                    f"[bold]experiments[/]: {n} scored ("
                    + ", ".join(f"{verdicts.count(v)} {v}" for v in ("improved", "worsened", "inconclusive"))
                    + ")"
                )
    elif json_out:
        say_error(f"no indicators in {data}: forecaster not trained, experiments not scored", label="note")
    else:
        console.print(
            f"[yellow]no indicators in {escape(str(data))}: forecaster not trained, experiments not scored[/]"
        )
    if json_out:
        emit_json(results)


# ------------------------------------------------------------------------------------------------- explain


@app.command()
def explain(
    indicators: Annotated[
        list[Path] | None,
        typer.Option(
            "--indicators",
            help="Indicator observations: CSV or Parquet. Without them, the weekly incident counts of --incidents "
            "(per team and service) are explained.",
        ),
    ] = None,
    incidents: Annotated[
        list[Path] | None, typer.Option("--incidents", help="Incidents (their patterns: the champion model).")
    ] = None,
    experiments: Annotated[list[Path] | None, typer.Option("--experiments", help="Experiments.")] = None,
    changes: Annotated[list[Path] | None, typer.Option("--changes", help="Change log (changes.csv).")] = None,
    since: Annotated[str | None, typer.Option(help="Only shifts from this date (YYYY-MM-DD).")] = None,
    mean: Annotated[
        list[str] | None,
        typer.Option(
            "--mean",
            help="An indicator whose aggregate over teams and services is the mean of its parts (a rate, a "
            "duration); repeat for several. Default: by its name's words (rate, pct, p95, mttr, hours...).",
        ),
    ] = None,
    total: Annotated[
        list[str] | None,
        typer.Option(
            "--sum", help="An indicator whose aggregate is the sum of its parts (a count); repeatable."
        ),
    ] = None,
    strict: StrictOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Why did an indicator move? Each shift with its candidate causes (slices, patterns, changes, experiments).

    Give --indicators, or only --incidents to explain the shifts of their weekly counts."""
    import datetime as dt

    from training.explain import explain as explain_job
    from training.explain import explanations_table

    try:
        since_d = dt.date.fromisoformat(since) if since else None
    except ValueError:
        fail(f"--since: {since!r} is not a date (YYYY-MM-DD)")
    out = _run_job(
        explain_job,
        json_out,
        indicators_paths=indicators or [],
        incidents_paths=incidents or [],
        experiments_paths=experiments or [],
        changes_paths=changes or [],
        since=since_d,
        strict=strict,
        mean=mean or [],
        total=total or [],
    )
    for note in out["notes"]:
        say_error(note, label="note")
    if json_out:
        emit_json({"signals": out["signals"]})
    else:
        console.print(explanations_table(out["signals"]))


# ------------------------------------------------------------------------------------------------- report


@app.command()
def report(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for index.html, report.json and slides/ (default: RECUR_REPORTS_DIR, reports/).",
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only incidents from this date (YYYY-MM-DD) in the heat maps.")
    ] = None,
    incidents: Annotated[
        list[Path] | None,
        typer.Option("--incidents", help="Postmortems for learning health (default: the data dir)."),
    ] = None,
    experiments: Annotated[
        list[Path] | None, typer.Option("--experiments", help="Experiment definitions.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Write the leadership report (self-contained HTML, JSON and slide PNGs) from the current champions."""
    import datetime as dt

    from training.report import write_report

    settings = _settings()
    try:
        since_d = dt.date.fromisoformat(since) if since else None
    except ValueError:
        fail(f"--since: {since!r} is not a date (YYYY-MM-DD)")
    try:
        result = write_report(
            settings,
            out or settings.reports_dir,
            incidents_paths=incidents or [settings.resolve("incidents")],
            experiments_paths=experiments or [settings.resolve("experiments")],
            since=since_d,
        )
    except RecurError as exc:
        fail(exc.message)
    if json_out:
        emit_json(result)
        return
    for s in result["sections"]:
        mark = "[green]ok[/]" if s["has_content"] else f"[yellow]empty[/] ({s['empty']})"
        console.print(f"{s['title']}: {mark}")
    console.print(
        f"report written to [bold]{escape(str(result['index']))}[/] ({result['slides']} slide images)"
    )


# ------------------------------------------------------------------------------------------------- similar


@app.command()
def similar(
    text: Annotated[str, typer.Argument(help="What is happening, in free text.")],
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="How many past incidents.")] = 5,
    service: Annotated[str | None, typer.Option(help="Only incidents of this service.")] = None,
    team: Annotated[str | None, typer.Option(help="Only incidents of this team.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Closest past incidents to TEXT, from the champion pattern model (no server needed)."""
    from ml.registry.names import PATTERNS_MODEL
    from training.champions import load_runtime

    try:
        runtime, version = load_runtime(_settings(), PATTERNS_MODEL)
        matches, qp = runtime.similar(text, k=k, service=service, team=team)
    except RecurError as exc:
        fail(exc.message)
    if json_out:
        emit_json(
            {"model": {"name": PATTERNS_MODEL, "version": version}, "query_pattern": qp, "matches": matches}
        )
        return
    console.print(
        f"pattern: [bold]{escape(qp['pattern_name'])}[/] (id {qp['pattern_id']}, confidence {qp['confidence']:.2f})"
        f"  [dim]{PATTERNS_MODEL} v{version}[/]"
    )
    table = Table(title=f"{len(matches)} closest past incidents")
    for col in ("id", "date", "service", "title", "pattern", "score", "why"):
        table.add_column(col, overflow="fold")
    for m in matches:
        why = ", ".join(
            m["reasons"]["shared_keywords"] + [f"same {f}" for f in m["reasons"]["matching_fields"]]
        )
        table.add_row(
            *(
                escape(str(c))
                for c in (m["id"], m["date"], m["service"] or "", m["title"], m["pattern_name"])
            ),
            f"{m['score']:.4f}",
            escape(why),
        )
    console.print(table)


# ------------------------------------------------------------------------------------------------- serve


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address (default: RECUR_API_HOST, 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: RECUR_API_PORT, 8000).")] = None,
    reload_interval: Annotated[
        float | None, typer.Option(help="Poll the registry for a new champion every N seconds (0: off).")
    ] = None,
) -> None:
    """Serve the API with uvicorn over the MLflow champions."""
    import gc

    gc.disable()  # start-up only allocates what lasts: the app turns collection back on once its models are built
    from serving.settings import SettingsError, load_serving_settings

    updates: dict[str, Any] = {}
    if host is not None:
        updates["api_host"] = host
    if port is not None:
        updates["api_port"] = port
    if reload_interval is not None:
        updates["reload_interval_s"] = reload_interval
    try:
        settings = load_serving_settings(**updates)
    except SettingsError as exc:
        fail(str(exc), code=2)
    bind = settings.api_host
    if not settings.key_scopes() and bind not in ("127.0.0.1", "localhost", "::1"):
        say_error(
            f"no API keys configured (RECUR_API_KEYS): binding to 127.0.0.1 instead of {bind}",
            label="warning",
        )
        bind = "127.0.0.1"
    from serving.prefetch import start_for

    prefetch = start_for(settings)  # a first start: fetch the champions while the server imports its code
    import uvicorn

    from serving.app import create_app

    logging.getLogger().setLevel(logging.INFO)
    app_ = create_app(settings, prefetch=prefetch)
    uvicorn.run(app_, host=bind, port=settings.api_port, log_level="info", access_log=False)


if __name__ == "__main__":  # pragma: no cover
    app()
