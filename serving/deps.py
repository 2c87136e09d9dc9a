"""Typed FastAPI dependencies."""

from __future__ import annotations

import logging
from typing import Annotated, NoReturn

from fastapi import Depends, Request

from ml.errors import ModelUnavailableError
from ml.registry.names import FORECASTER_MODEL as FORECASTER
from ml.registry.names import PATTERNS_MODEL as PATTERNS
from serving.errors import ModelNotLoaded
from serving.models import LoadedModel, ModelStore
from serving.settings import ServingSettings

log = logging.getLogger(__name__)


# Dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in the thread pool, a thread hop
# per dependency per request for what is an attribute lookup.
async def get_settings(request: Request) -> ServingSettings:
    return request.app.state.settings


async def get_store(request: Request) -> ModelStore:
    return request.app.state.store


SettingsDep = Annotated[ServingSettings, Depends(get_settings)]
StoreDep = Annotated[ModelStore, Depends(get_store)]


class Champions:
    """Access to the loaded champions from a route. Routes ask for a model only after the request validated,
    so a bad request is a 422 even while no model is loaded (then 503). The model a route takes is recorded
    in the request's state; the ``LimitsAndModelHeaders`` middleware names it in ``X-Model-Name`` /
    ``X-Model-Version`` whatever kind of response the route returns."""

    def __init__(self, store: ModelStore, request: Request) -> None:
        self.store = store
        self.request = request

    def get(self, name: str) -> LoadedModel:
        try:
            model = self.store.get(name)
        except ModelUnavailableError as exc:
            _not_loaded(name, exc)
        self.request.state.recur_model = (model.name, model.version)
        return model

    @property
    def patterns(self) -> LoadedModel:
        return self.get(PATTERNS)

    @property
    def forecaster(self) -> LoadedModel:
        return self.get(FORECASTER)


def _not_loaded(name: str, exc: ModelUnavailableError) -> NoReturn:
    """A generic 503 for the client; why (paths, URIs, exception text) goes to the log only."""
    log.info("Serving - %s unavailable: %s", name, exc.message)
    raise ModelNotLoaded(
        f"model {name} is not loaded. Train and promote it (`recur train ... --promote`), "
        "then POST /v1/admin/reload.",
        field="model",
        value=name,
    ) from None


async def get_champions(store: StoreDep, request: Request) -> Champions:
    return Champions(store, request)


ChampionsDep = Annotated[Champions, Depends(get_champions)]
