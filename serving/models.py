"""The champions the API serves: loaded from the MLflow registry by alias, swapped atomically on reload.

A version is served from its data files only: the store downloads the version's artifact folder and builds the
runtime with the installed code (:func:`ml.registry.runtimes.open_runtime`), after validating every array; it
never imports the code the registry holds. A version that fails to download, validate or build is refused and
the model already loaded keeps serving; ``/readyz`` says so in generic words (the details go to the log only).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ml.errors import ModelUnavailableError
from ml.registry.artifacts import MODEL_KINDS, ArtifactError, fetch_version
from ml.registry.names import CHAMPION as ALIAS
from ml.registry.names import MODEL_NAMES
from ml.registry.runtimes import LRUCache, open_runtime

log = logging.getLogger(__name__)

#: MLflow error codes that mean "no such model or alias" rather than "the registry did not answer".
_ABSENT = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}

UNREACHABLE = "the model registry is unreachable; retrying"


def _limit_http_retries() -> None:
    """A registry that does not answer should cost seconds, not MLflow's default minutes of retries: the API
    starts not-ready and the poller tries again."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


class _Unreachable(Exception):
    """The registry did not answer."""


class AnswerCache(LRUCache[Hashable, bytes]):
    """Finished response bodies by request (a small thread-safe LRU). One per loaded version, so a reload
    starts empty: an answer is a function of the request and the version alone. During an incident the same
    texts come back (responders, bots, retries); a repeated question then costs no search at all."""


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    run_id: str | None
    runtime: Any  # a runtime of ml.registry.runtimes, built from the version's data files
    loaded_at: float = field(default_factory=time.time)
    answers: AnswerCache = field(default_factory=lambda: AnswerCache(0))


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
        _limit_http_retries()
        self.tracking_uri = tracking_uri
        self.cache_sizes = dict(cache_sizes or {})  # runtime LRU sizes, e.g. {"query": 2048, "heatmap": 64}
        self.names = names
        self.alias = alias
        self._models: dict[str, LoadedModel] = {}
        self._errors: dict[str, str] = {}
        self._refused: dict[str, tuple[str, str]] = {}  # name -> (version, generic reason)
        self._reload_lock = threading.Lock()

    def _client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def _champion(self, name: str) -> tuple[str, str | None] | None:
        """(version, run id) behind the alias; None when there is none; _Unreachable when the registry fails."""
        try:
            mv = self._client().get_model_version_by_alias(name, self.alias)
        except MlflowException as exc:
            if exc.error_code in _ABSENT:
                return None
            log.warning("Serving - registry error for %s: %s", name, str(exc).splitlines()[0][:300])
            raise _Unreachable from None
        except Exception as exc:  # connection refused, DNS, TLS ...: the registry did not answer
            log.warning("Serving - registry unreachable for %s: %s: %s", name, type(exc).__name__, exc)
            raise _Unreachable from None
        return str(mv.version), mv.run_id

    def _load(self, name: str, version: str, run_id: str | None) -> LoadedModel:
        started = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix="recur-serve-"))
        try:
            root = fetch_version(self.tracking_uri, name, version, dest=tmp)
            # Built from the data files by the installed code; code stored with the artifact is never run.
            runtime = open_runtime(root, MODEL_KINDS.get(name))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # the runtime holds everything in memory
        if self.cache_sizes and hasattr(runtime, "configure_caches"):
            runtime.configure_caches(**self.cache_sizes)
        if hasattr(runtime, "warm_up"):
            runtime.warm_up()
        log.info("Serving - loaded %s v%s in %.1fs", name, version, time.perf_counter() - started)
        answers = AnswerCache(int(self.cache_sizes.get("query", 0)))
        return LoadedModel(name=name, version=version, run_id=run_id, runtime=runtime, answers=answers)

    def reload(self, force: bool = False, only_missing: bool = False) -> dict[str, dict[str, Any]]:
        """Load any champion that changed since the last load (with `only_missing`, only models not loaded yet).
        A version that was refused is not tried again unless `force`. Returns what happened per model."""
        out: dict[str, dict[str, Any]] = {}
        with self._reload_lock:
            for name in self.names:
                current = self._models.get(name)
                kept = current.version if current else None
                if only_missing and current is not None:
                    out[name] = {"status": "unchanged", "version": kept}
                    continue
                try:
                    champ = self._champion(name)
                except _Unreachable:
                    if current is None:
                        self._errors[name] = UNREACHABLE
                    out[name] = {"status": "unreachable", "version": kept}
                    continue
                if champ is None:
                    self._errors[name] = f"no '{self.alias}' version of model '{name}' in the registry"
                    out[name] = {"status": "missing", "version": kept}
                    continue
                version, run_id = champ
                if current is not None and current.version == version and not force:
                    out[name] = {"status": "unchanged", "version": version}
                    continue
                refused = self._refused.get(name)
                if refused is not None and refused[0] == version and not force:
                    out[name] = {"status": "refused", "version": kept, "refused": version}
                    continue
                try:
                    loaded = self._load(name, version, run_id)
                except Exception as exc:  # a broken model must not take the service down
                    reason = _refusal(exc)
                    log.error(
                        "Serving - refused %s v%s (%s): %s: %s",
                        name,
                        version,
                        reason,
                        type(exc).__name__,
                        exc,
                    )
                    self._refused[name] = (version, reason)
                    if current is None:
                        self._errors[name] = f"{name} v{version} {reason}"
                    out[name] = {"status": "refused", "version": kept, "refused": version}
                    continue
                self._models = {**self._models, name: loaded}  # atomic swap of the reference
                self._errors.pop(name, None)
                self._refused.pop(name, None)
                out[name] = {"status": "loaded", "version": version, "previous": kept}
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

    def all_loaded(self) -> bool:
        return all(name in self._models for name in self.names)

    def status(self) -> dict[str, Any]:
        """Per model: loaded (version, run id) or why not; a refused newer champion and why, in generic words."""
        models: dict[str, Any] = {}
        for name in self.names:
            m = self._models.get(name)
            entry: dict[str, Any] = (
                {"loaded": True, "version": m.version, "run_id": m.run_id}
                if m
                else {"loaded": False, "reason": self._errors.get(name, "not loaded yet")}
            )
            refused = self._refused.get(name)
            if refused is not None:
                entry["refused"] = {"version": refused[0], "reason": refused[1]}
            models[name] = entry
        return models


def _refusal(exc: BaseException) -> str:
    """Why a version was refused, in words that reveal no path, class or trace."""
    if isinstance(exc, ArtifactError):
        return "was refused: its artifact is missing, incomplete or corrupt"
    if isinstance(exc, (MlflowException, OSError)):
        return "was refused: its artifact could not be downloaded"
    return "was refused: it could not be built (the server log has why)"


class Poller:
    """Polls the registry every `interval` seconds and reloads changed champions. With no interval it still
    retries every `retry_s` seconds while a model is not loaded (registry down at start, no champion yet), so
    the API becomes ready by itself; once every model is loaded it only reloads on request."""

    def __init__(self, store: ModelStore, interval: float, retry_s: float = 5.0) -> None:
        self.store = store
        self.interval = interval
        self.retry_s = retry_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recur-model-poller", daemon=True)

    def start(self) -> None:
        if self.interval > 0 or self.retry_s > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval if self.interval > 0 else self.retry_s):
            try:
                if self.interval > 0:
                    self.store.reload()
                elif not self.store.all_loaded():
                    self.store.reload(only_missing=True)
            except Exception:
                log.exception("Serving - model poll failed")
