"""The champions the API serves: loaded from the MLflow registry by alias, swapped atomically on reload."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ml.errors import ModelUnavailableError
from ml.registry.names import CHAMPION as ALIAS
from ml.registry.names import MODEL_NAMES

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    run_id: str | None
    runtime: Any  # the unwrapped python model (ml.registry.runtimes)
    loaded_at: float = field(default_factory=time.time)


class ModelStore:
    """Holds one loaded champion per model name. Readers take a reference; a reload builds the new model fully
    before swapping the reference, so requests in flight keep the model they started with."""

    def __init__(
        self,
        tracking_uri: str,
        names: tuple[str, ...] = MODEL_NAMES,
        alias: str = ALIAS,
        cache_sizes: dict[str, int] | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.cache_sizes = dict(cache_sizes or {})  # runtime LRU sizes, e.g. {"query": 2048, "heatmap": 64}
        self.names = names
        self.alias = alias
        self._models: dict[str, LoadedModel] = {}
        self._errors: dict[str, str] = {}
        self._reload_lock = threading.Lock()

    def _client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def _champion(self, name: str) -> tuple[str, str | None] | None:
        try:
            mv = self._client().get_model_version_by_alias(name, self.alias)
        except MlflowException:
            return None
        return str(mv.version), mv.run_id

    def _load(self, name: str, version: str, run_id: str | None) -> LoadedModel:
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        started = time.perf_counter()
        pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        runtime = pyfunc.unwrap_python_model()
        runtime = getattr(runtime, "runtime", None) or runtime
        if self.cache_sizes and hasattr(runtime, "configure_caches"):
            runtime.configure_caches(**self.cache_sizes)
        if hasattr(runtime, "warm_up"):
            runtime.warm_up()
        log.info("Serving - loaded %s v%s in %.1fs", name, version, time.perf_counter() - started)
        return LoadedModel(name=name, version=version, run_id=run_id, runtime=runtime)

    def reload(self, force: bool = False) -> dict[str, dict[str, Any]]:
        """Load any champion that changed since the last load. Returns what happened per model."""
        out: dict[str, dict[str, Any]] = {}
        with self._reload_lock:
            for name in self.names:
                current = self._models.get(name)
                champ = self._champion(name)
                if champ is None:
                    self._errors[name] = f"no '{self.alias}' version of model '{name}' in the registry"
                    out[name] = {"status": "missing", "version": current.version if current else None}
                    continue
                version, run_id = champ
                if current is not None and current.version == version and not force:
                    out[name] = {"status": "unchanged", "version": version}
                    continue
                try:
                    loaded = self._load(name, version, run_id)
                except Exception as exc:  # a broken model must not take the service down
                    log.exception("Serving - could not load %s v%s", name, version)
                    self._errors[name] = f"could not load {name} v{version} ({type(exc).__name__}); see log"
                    out[name] = {"status": "error", "version": current.version if current else None}
                    continue
                self._models = {**self._models, name: loaded}  # atomic swap of the reference
                self._errors.pop(name, None)
                out[name] = {
                    "status": "loaded",
                    "version": version,
                    "previous": current.version if current else None,
                }
        return out

    def get(self, name: str) -> LoadedModel:
        model = self._models.get(name)
        if model is None:
            why = self._errors.get(name, f"model '{name}' is not loaded")
            raise ModelUnavailableError(
                f"{why}. Train and promote it (`recur train ... --promote`), then POST /v1/admin/reload."
            )
        return model

    def loaded(self) -> dict[str, LoadedModel]:
        return dict(self._models)

    def status(self) -> dict[str, Any]:
        models = {}
        for name in self.names:
            m = self._models.get(name)
            models[name] = (
                {"loaded": True, "version": m.version, "run_id": m.run_id}
                if m
                else {"loaded": False, "reason": self._errors.get(name, "not loaded yet")}
            )
        return models


class Poller:
    """Polls the registry every `interval` seconds and reloads changed champions."""

    def __init__(self, store: ModelStore, interval: float) -> None:
        self.store = store
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recur-model-poller", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.store.reload()
            except Exception:
                log.exception("Serving - model poll failed")
