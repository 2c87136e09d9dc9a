"""Typed FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from ml.settings import Settings
from serving.models import FORECASTER, PATTERNS, LoadedModel, ModelStore


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> ModelStore:
    return request.app.state.store


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ModelStore, Depends(get_store)]


def _model_dep(name: str):
    def dep(store: StoreDep, response: Response) -> LoadedModel:
        model = store.get(name)
        response.headers["X-Model-Name"] = model.name
        response.headers["X-Model-Version"] = model.version
        return model

    return dep


PatternsDep = Annotated[LoadedModel, Depends(_model_dep(PATTERNS))]
ForecasterDep = Annotated[LoadedModel, Depends(_model_dep(FORECASTER))]
