"""Typed FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from ml.settings import Settings
from serving.models import FORECASTER, PATTERNS, LoadedModel, ModelStore


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
    so a bad request is a 422 even while no model is loaded (then 503)."""

    def __init__(self, store: StoreDep, response: Response) -> None:
        self.store = store
        self.response = response

    def get(self, name: str) -> LoadedModel:
        model = self.store.get(name)
        self.response.headers["X-Model-Name"] = model.name
        self.response.headers["X-Model-Version"] = model.version
        return model

    @property
    def patterns(self) -> LoadedModel:
        return self.get(PATTERNS)

    @property
    def forecaster(self) -> LoadedModel:
        return self.get(FORECASTER)


async def get_champions(store: StoreDep, response: Response) -> Champions:
    return Champions(store, response)


ChampionsDep = Annotated[Champions, Depends(get_champions)]
