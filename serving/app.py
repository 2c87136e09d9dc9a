"""The Recur API: similar incidents, patterns, heat maps, indicators, experiments and the report."""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from threadpoolctl import threadpool_limits

from serving import errors
from serving.metrics import Metrics
from serving.middleware import LimitsAndModelHeaders, LoopbackAndHostGuard, PrometheusMiddleware
from serving.models import ModelStore, Poller
from serving.prefetch import Prefetch, start_for
from serving.settings import ServingSettings, SettingsError, load_serving_settings

log = logging.getLogger(__name__)

API_DESCRIPTION = """
Recur answers responders and tools while an incident is live: the closest past postmortems and why they match,
the failure pattern a new postmortem belongs to, heat maps of recurring patterns, indicator forecasts and shifts,
and experiment verdicts. Models are the MLflow champions (`models:/<name>@champion`); every response names the
model and version it used in `X-Model-Name` / `X-Model-Version`.

Authentication: `Authorization: Bearer <key>` with scope `read` (queries) or `admin` (reload). With no keys
configured the API answers loopback callers only (403 for any other peer) and only to a loopback `Host`
(400 otherwise, against DNS rebinding). `POST /v1/admin/reload` takes a JSON body (`{}`), so a cross-site form
cannot trigger it.
"""


def create_app(
    settings: ServingSettings | None = None, *, load_models: bool = True, prefetch: Prefetch | None = None
) -> FastAPI:
    """The API over ``settings`` (read from the environment when not given; :class:`SettingsError` if bad).
    `prefetch`: the champions being fetched in a second process (``recur serve`` starts it before its imports;
    see :mod:`serving.prefetch`), waited for at start-up."""
    settings = settings or load_serving_settings()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    store = ModelStore(
        settings.tracking_uri,
        cache_sizes={"query": settings.query_cache_size, "heatmap": settings.heatmap_cache_size},
        cache_dir=settings.model_cache_path,
        query_runtime=settings.query_runtime,
    )
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One BLAS thread while serving: a search is one matrix-vector product at a time on the event loop;
        # more threads only spin against each other and the clients (server CPU per request doubled with two).
        blas = threadpool_limits(1, user_api="blas")

        def record(result: dict[str, dict[str, Any]]) -> None:
            for name, info in result.items():
                metrics.model_version.labels(name).set(float(info.get("version") or 0))
                if not store.status()[name]["loaded"]:
                    log.warning("Serving - %s: %s", name, store.status()[name].get("reason"))

        from_copies = False
        if load_models:
            # Start-up only allocates what lasts (code, models): no collection passes until the models are built
            # (`recur serve` stops them before its imports). Building 10,000 incidents walked the heap about 130
            # times (0.08 of a 0.5 s build); a fetch process's MLflow import took 2.3 CPU-s with them, 1.7 without.
            gc.disable()
            try:
                # The local copies first (ready at once, no registry; on a first start, those the second process
                # has just fetched); the poller then checks the registry.
                fetched = None
                if prefetch is not None:  # while it fetches: everything the build needs that no artifact does
                    store.prepare()
                    fetched = prefetch.wait()
                cached = store.open_cached(fetched)
                from_copies = any(info["status"] == "loaded" for info in cached.values())
                if from_copies or all(info["status"] == "missing" for info in cached.values()):
                    # a copy's check is the poller's; a champion the fetch found absent is not asked for again
                    for name, info in cached.items():
                        metrics.model_version.labels(name).set(float(info.get("version") or 0))
                        if info["status"] == "missing":
                            log.warning("Serving - %s: %s", name, store.status()[name].get("reason"))
                else:
                    record(store.reload())
            finally:
                # What start-up made joins the oldest generation without a pass over it (freeze, then unfreeze),
                # so the first collections after ready stay small; the oldest generation's own passes still
                # reclaim any cycle left among it.
                gc.freeze()
                gc.unfreeze()
        gc.enable()  # on in any case: `recur serve` turned it off before its imports
        poller = Poller(
            store,
            settings.reload_interval_s,
            first_s=1.0 if from_copies else None,
            on_first=record if from_copies else None,
        )
        poller.start()
        log.info("Serving - the API is under /v1 (docs at /docs), the web page at /ui")
        if not app.state.key_scopes:
            log.warning(
                "Serving - no API keys configured: answering loopback callers only, and every one is admin"
            )
        yield
        poller.stop()
        blas.restore_original_limits()

    app = FastAPI(
        title="Recur API",
        version="1.0.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        responses={500: {"model": errors.ErrorBody, "description": "Unexpected error (no details leak)."}},
    )
    app.state.settings = settings
    app.state.store = store
    app.state.metrics = metrics
    app.state.key_scopes = settings.key_scopes()
    errors.install(app)

    # The last added is the outermost: metrics see every response, the guard's 403/400 and the limits' 413s
    # included; the guard refuses a foreign caller before its body is read.
    app.add_middleware(LimitsAndModelHeaders, store=store, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(
        LoopbackAndHostGuard,
        loopback_only=not app.state.key_scopes,
        allowed_hosts=settings.allowed_hosts,
    )
    app.add_middleware(PrometheusMiddleware, metrics=metrics)

    from serving.routes import admin, experiments, health, incidents, indicators, patterns, report

    for module in (health, admin, incidents, patterns, indicators, experiments, report):
        app.include_router(module.router)

    from fastapi.staticfiles import StaticFiles

    from serving.ui import routes as ui  # the web page (/ui), behind the same guard and keys as the API

    app.include_router(ui.router)
    app.mount("/ui/static", StaticFiles(directory=ui.STATIC_DIR), name="ui-static")
    return app


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory serving.app:app_factory`. A bad setting is one line on stderr and exit
    code 2, not a traceback."""
    try:
        settings = load_serving_settings()
        return create_app(settings, prefetch=start_for(settings))
    except SettingsError as exc:
        log.error("error: %s", exc)
        sys.stderr.flush()
        raise SystemExit(2) from None
