"""The ``recur`` command line: validate data, train and promote models, score experiments, report, serve."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ml.errors import RecurError
from ml.readers import ReadResult, detect_kind, read_path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(
    name="recur",
    help="Recur: learn from incidents so that failures stop recurring.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress (INFO) to stderr.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("cmdstanpy", "prophet", "mlflow", "urllib3", "alembic", "numba", "distributed"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# ------------------------------------------------------------------------------------------------- validate


def _rejects_table(results: list[ReadResult[Any]]) -> Table:
    table = Table(title="Quarantined records", show_lines=False)
    for col in ("file", "line", "record", "field", "reason"):
        table.add_column(col, overflow="fold")
    for res in results:
        for r in res.rejects:
            table.add_row(r.file, "" if r.line is None else str(r.line), r.record or "", r.field or "", r.reason)
    return table


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders: incidents, indicators, experiments.")],
    json_out: JsonOpt = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit with code 2 if any record is rejected.")] = False,
) -> None:
    """Validate data files: counts per file and a table of every quarantined record (file, line, field, reason)."""
    results: list[ReadResult[Any]] = []
    skipped: list[str] = []
    for p in paths:
        if not p.exists():
            fail(f"{p}: no such file or folder")
        kind = detect_kind(p)
        if kind is None:
            skipped.append(str(p))
            continue
        try:
            results.append(read_path(p, kind))
        except RecurError as exc:
            fail(exc.message)
    total_rejects = sum(r.quarantined for r in results)
    if json_out:
        emit_json({"results": [r.summary() for r in results], "skipped": skipped, "quarantined": total_rejects})
    else:
        table = Table(title="Validation")
        for col in ("source", "kind", "records in", "accepted", "quarantined", "notes"):
            table.add_column(col, justify="right" if col not in ("source", "kind") else "left")
        for r in results:
            table.add_row(
                ", ".join(r.sources), r.kind, str(r.records_in), str(r.accepted), str(r.quarantined), str(len(r.notes))
            )
        console.print(table)
        for s in skipped:
            console.print(f"[yellow]skipped[/] {s}: not a Recur data file")
        if total_rejects:
            console.print(_rejects_table(results))
        else:
            console.print("[green]No rejects.[/]")
    if strict and total_rejects:
        raise typer.Exit(2)


# ------------------------------------------------------------------------------------------------- serve


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: RECUR_API_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: RECUR_API_PORT, 8000).")] = None,
    reload_interval: Annotated[
        float | None, typer.Option(help="Poll the registry for a new champion every N seconds (0: off).")
    ] = None,
) -> None:
    """Serve the API with uvicorn over the MLflow champions."""
    import uvicorn

    from ml.settings import get_settings

    settings = get_settings()
    updates: dict[str, Any] = {}
    if host is not None:
        updates["api_host"] = host
    if port is not None:
        updates["api_port"] = port
    if reload_interval is not None:
        updates["reload_interval_s"] = reload_interval
    settings = settings.model_copy(update=updates)
    bind = settings.api_host
    if not settings.key_scopes() and bind not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(
            f"[yellow]warning:[/] no API keys configured (RECUR_API_KEYS): binding to 127.0.0.1 instead of {bind}"
        )
        bind = "127.0.0.1"
    from serving.app import create_app

    logging.getLogger().setLevel(logging.INFO)
    uvicorn.run(create_app(settings), host=bind, port=settings.api_port, log_level="info", access_log=False)


if __name__ == "__main__":  # pragma: no cover
    app()
