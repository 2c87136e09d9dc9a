"""Typed FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ml.registry.names import FORECASTER_MODEL as FORECASTER
from ml.registry.names import PATTERNS_MODEL as PATTERNS
from ml.settings import Settings
from serving.models import LoadedModel, ModelStore


# Dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in the thread pool, a thread hop
# per dependency per request for what is an attribute lookup.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_store(request: Request) -> ModelStore:
    return request.app.state.store


SettingsDep = Annotated[Settings, Depends(get_settings)]
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
        model = self.store.get(name)
        self.request.state.recur_model = (model.name, model.version)
        return model

    @property
    def patterns(self) -> LoadedModel:
        return self.get(PATTERNS)

    @property
    def forecaster(self) -> LoadedModel:
        return self.get(FORECASTER)


async def get_champions(store: StoreDep, request: Request) -> Champions:
    return Champions(store, request)


ChampionsDep = Annotated[Champions, Depends(get_champions)]
