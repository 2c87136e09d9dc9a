"""The champions the API serves: loaded from the MLflow registry by alias, swapped atomically on reload.

A version is served from its data files only: the store downloads the version's artifact folder and builds the
runtime with the installed code (:func:`ml.registry.runtimes.open_runtime`), after validating every array; it
never imports the code the registry holds. A version that fails to download, validate or build is refused and
the model already loaded keeps serving; ``/readyz`` says so in generic words (the details go to the log only).

With a local cache (:mod:`serving.model_cache`) each loaded version's folder is kept on disk; at start-up
:meth:`ModelStore.open_cached` builds the models from those copies without importing MLflow, and a background
check against the registry (:meth:`ModelStore.reload`) then keeps them, replaces them with a newer champion, or
leaves them serving while the registry does not answer. Status says where each model came from.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml.errors import ModelUnavailableError
from ml.registry.artifacts import MANIFEST, MODEL_KINDS, ArtifactError, fetch_version, file_sha256
from ml.registry.names import CHAMPION as ALIAS
from ml.registry.names import MODEL_NAMES
from ml.registry.runtimes import LRUCache, import_pattern_code, open_runtime, query_embedder
from serving.model_cache import CachedEntry, CacheError, ModelCache
from serving.prefetch import Unreachable as _Unreachable
from serving.prefetch import champion
from serving.prefetch import first_line as _first_line
from serving.prefetch import limit_http_retries as _limit_http_retries

# MLflow (about a second to import) is imported in the methods that talk to the registry, so that a start from
# the local copies is ready before it is needed.

log = logging.getLogger(__name__)

UNREACHABLE = "the model registry is unreachable; retrying"
REGISTRY = "registry"
LOCAL_COPY = "local copy"


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
    source: str = REGISTRY  # REGISTRY, or LOCAL_COPY: built from the local cache at start-up


class ModelStore:
    """Holds one loaded champion per model name. Readers take a reference; a reload builds the new model fully
    before swapping the reference, so requests in flight keep the model they started with."""

    def __init__(
        self,
        tracking_uri: str,
        names: tuple[str, ...] = MODEL_NAMES,
        alias: str = ALIAS,
        cache_sizes: dict[str, int] | None = None,
        cache_dir: Path | None = None,
        query_runtime: str | None = None,
    ) -> None:
        _limit_http_retries()
        self.query_runtime = query_runtime  # the runtime embedding pasted texts (None: the runtime's default)
        self.tracking_uri = tracking_uri
        self.cache_sizes = dict(cache_sizes or {})  # runtime LRU sizes, e.g. {"query": 2048, "heatmap": 64}
        self.names = names
        self.alias = alias
        #: The local copies of the champions (None: off); see serving.model_cache.
        self.cache = ModelCache(cache_dir, tracking_uri) if cache_dir is not None else None
        self._models: dict[str, LoadedModel] = {}
        self._errors: dict[str, str] = {}
        self._refused: dict[str, tuple[str, str]] = {}  # name -> (version, generic reason)
        self._unchecked: set[str] = set()  # served from a local copy the registry has not confirmed yet
        self._notes: dict[str, str] = {}  # name -> what the registry said about its local copy
        self._copies: dict[str, CachedEntry] = {}  # name -> the local copy being served
        self._reload_lock = threading.Lock()
        self._embedder: Any = None  # the query embedder every pattern runtime shares (query_embedder)
        self._embedder_lock = threading.Lock()

    def _client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def _champion(self, name: str) -> tuple[str, str | None] | None:
        """(version, run id) behind the alias; None when there is none; _Unreachable when the registry fails."""
        return champion(self.tracking_uri, name, self.alias)

    def _no_champion(self, name: str) -> str:
        """Why `name` is not loaded when the registry has no champion of it."""
        return f"no '{self.alias}' version of model '{name}' in the registry"

    def query_embedder(self) -> Any:
        """The query embedder of the pattern runtimes (``query_runtime``, else ``"auto"``), loaded on the first
        call and shared by every version loaded after: it depends on no artifact."""
        with self._embedder_lock:
            if self._embedder is None:
                self._embedder = query_embedder(self.query_runtime or "auto")
            return self._embedder

    def prepare(self) -> None:
        """Do now what building a pattern runtime needs and no artifact does: import its code, load the query
        embedder and run it once. On a first start this runs while the champions are being fetched, so that
        only reading the artifact is left once they arrive."""
        started = time.perf_counter()
        try:
            import_pattern_code()
            self.query_embedder().encode(["warm up"])
        except Exception as exc:  # the build tries again and refuses the version, saying why
            log.warning(
                "Serving - could not prepare the query embedder: %s: %s", type(exc).__name__, _first_line(exc)
            )
            return
        log.info(
            "Serving - pattern runtime code and query embedder ready in %.1fs", time.perf_counter() - started
        )

    def _build(self, root: Path, name: str) -> Any:
        """The runtime of the artifact folder `root`, built by the installed code (code stored with the artifact
        is never run), its caches sized and the shared query embedder in place (:meth:`query_embedder`)."""
        kind = MODEL_KINDS.get(name)
        options = {"embedder": self.query_embedder()} if kind == "patterns" else {}
        runtime = open_runtime(root, kind, **options)
        if self.cache_sizes and hasattr(runtime, "configure_caches"):
            runtime.configure_caches(**self.cache_sizes)
        if hasattr(runtime, "warm_up"):
            runtime.warm_up()
        return runtime

    def _loaded(self, name: str, version: str, run_id: str | None, runtime: Any, source: str) -> LoadedModel:
        answers = AnswerCache(int(self.cache_sizes.get("query", 0)))
        return LoadedModel(
            name=name, version=version, run_id=run_id, runtime=runtime, answers=answers, source=source
        )

    def _load(self, name: str, version: str, run_id: str | None) -> LoadedModel:
        started = time.perf_counter()
        tmp = self._download_folder(name)
        try:
            root = fetch_version(self.tracking_uri, name, version, dest=tmp)
            runtime = self._build(root, name)
            if self.cache is not None:
                self._keep(name, version, run_id, root, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # the runtime holds everything in memory
        log.info("Serving - loaded %s v%s in %.1fs", name, version, time.perf_counter() - started)
        return self._loaded(name, version, run_id, runtime, REGISTRY)

    def _download_folder(self, name: str) -> Path:
        """A fresh folder to download a version into: with a cache, on its file system (keeping the validated
        folder is then a rename); without one, or when the cache folder cannot take it (a local disk problem
        must not refuse a good version), a temporary folder."""
        if self.cache is not None:
            try:
                return self.cache.staging(name)
            except OSError as exc:
                log.warning(
                    "Serving - the local model cache cannot be written (%s): downloading %s to a temporary folder",
                    exc.strerror or type(exc).__name__,
                    name,
                )
        return Path(tempfile.mkdtemp(prefix="recur-serve-"))

    def _keep(self, name: str, version: str, run_id: str | None, root: Path, tmp: Path) -> None:
        """Keep the validated folder of a version loaded from the registry as the local copy; a failure (disk
        full, permissions) costs only the next fast start."""
        assert self.cache is not None
        try:
            self.cache.keep(name, version, run_id, root, tmp)
        except (OSError, CacheError) as exc:
            log.warning("Serving - could not keep a local copy of %s v%s: %s", name, version, exc)

    def open_cached(
        self, fetched: Mapping[str, Mapping[str, Any]] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Build every model that has a local copy, without the registry (MLflow is not imported). A copy that
        is missing, half written, tampered or corrupt is refused (one log line) and forgotten: the registry's
        copy is loaded instead by the next :meth:`reload`. Returns what happened per model.

        `fetched` is what :mod:`serving.prefetch` did in this start: a copy it downloaded from the registry
        (same version and manifest) is served as the registry's, with no background check; a model it found
        without a champion is reported as such."""
        fetched = fetched or {}
        out: dict[str, dict[str, Any]] = {}
        if self.cache is None:
            return {name: {"status": "absent", "version": None} for name in self.names}
        with self._reload_lock:
            for name in self.names:
                if name in self._models or not self.cache.has(name):
                    if fetched.get(name, {}).get("status") == "missing":
                        self._errors[name] = self._no_champion(name)
                        out[name] = {"status": "missing", "version": None}
                    else:
                        out[name] = {"status": "absent", "version": None}
                    continue
                started = time.perf_counter()
                try:
                    entry = self.cache.current(name)
                    runtime = self._build(entry.root, name)
                except Exception as exc:  # never serve a bad copy: the registry's is loaded instead
                    log.error(
                        "Serving - refused the local copy of %s (%s: %s); loading it from the registry",
                        name,
                        type(exc).__name__,
                        _first_line(exc),
                    )
                    self.cache.discard(name)
                    out[name] = {"status": "refused", "version": None}
                    continue
                got = fetched.get(name, {})
                fresh = (got.get("version"), got.get("manifest_sha256")) == (
                    entry.version,
                    entry.manifest_sha256,
                )
                source = REGISTRY if fresh else LOCAL_COPY
                self._models = {
                    **self._models,
                    name: self._loaded(name, entry.version, entry.run_id, runtime, source),
                }
                if not fresh:
                    self._unchecked.add(name)
                    self._copies[name] = entry
                    self._notes[name] = "checking the registry"
                log.info(
                    "Serving - loaded %s v%s from the %s in %.1fs",
                    name,
                    entry.version,
                    "registry (fetched at start-up)" if fresh else "local copy",
                    time.perf_counter() - started,
                )
                out[name] = {"status": "loaded", "version": entry.version, "source": source}
        return out

    def _same_as_registry(self, name: str, version: str) -> bool:
        """Whether the local copy of `version` being served holds the registry's files: its manifest (which
        lists every file's SHA-256, checked when the copy was opened) equals the registry's. _Unreachable if
        the registry does not answer."""
        entry = self._copies.get(name)
        if self.cache is None or entry is None or entry.version != version:
            return False
        tmp = self._download_folder(name)
        try:
            try:
                location = self._client().get_model_version_download_uri(name, version)
            except Exception as exc:
                log.warning("Serving - could not check the local copy of %s: %s", name, type(exc).__name__)
                raise _Unreachable from None
            theirs = self._registry_manifest(name, version, location, entry.manifest_path, tmp)
            return file_sha256(theirs) == entry.manifest_sha256
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _registry_manifest(self, name: str, version: str, location: str, where: str, tmp: Path) -> Path:
        """The registry's manifest of `version`, downloaded alone when its place is known, else with the
        version's files; _Unreachable when neither download works."""
        if where:
            import mlflow.artifacts

            (tmp / "manifest").mkdir()
            try:
                got = mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{location.rstrip('/')}/{where}/{MANIFEST}",
                    dst_path=str(tmp / "manifest"),
                    tracking_uri=self.tracking_uri,
                )
                return Path(got)
            except Exception as exc:
                log.info("Serving - %s v%s: the manifest alone could not be fetched (%s)", name, version, exc)
        try:
            (tmp / "version").mkdir()
            return fetch_version(self.tracking_uri, name, version, dest=tmp / "version") / MANIFEST
        except Exception as exc:
            log.warning(
                "Serving - could not check the local copy of %s: %s: %s", name, type(exc).__name__, exc
            )
            raise _Unreachable from None

    def reload(self, force: bool = False, only_missing: bool = False) -> dict[str, dict[str, Any]]:
        """Load any champion that changed since the last load (with `only_missing`, only models not loaded yet
        or served from a local copy the registry has not confirmed). A local copy of the champion's version is
        kept when its manifest is the registry's, else replaced. A version that was refused is not tried again
        unless `force`. Returns what happened per model."""
        out: dict[str, dict[str, Any]] = {}
        with self._reload_lock:
            for name in self.names:
                current = self._models.get(name)
                kept = current.version if current else None
                if only_missing and current is not None and name not in self._unchecked:
                    out[name] = {"status": "unchanged", "version": kept}
                    continue
                try:
                    champ = self._champion(name)
                except _Unreachable:
                    if current is None:
                        self._errors[name] = UNREACHABLE
                    if name in self._unchecked:
                        self._notes[name] = "registry unreachable"
                    out[name] = {"status": "unreachable", "version": kept}
                    continue
                if champ is None:
                    self._errors[name] = self._no_champion(name)
                    if name in self._unchecked:  # checked: the registry has nothing newer to serve
                        self._unchecked.discard(name)
                        self._notes[name] = f"the registry has no '{self.alias}' version"
                    out[name] = {"status": "missing", "version": kept}
                    continue
                version, run_id = champ
                if current is not None and current.version == version and not force:
                    if name not in self._unchecked:
                        out[name] = {"status": "unchanged", "version": version}
                        continue
                    try:
                        same = self._same_as_registry(name, version)
                    except _Unreachable:
                        self._notes[name] = "registry unreachable"
                        out[name] = {"status": "unreachable", "version": kept}
                        continue
                    if same:
                        log.info(
                            "Serving - the local copy of %s v%s is the registry's champion", name, version
                        )
                        self._unchecked.discard(name)
                        self._notes[name] = "the registry's champion (checked)"
                        out[name] = {"status": "unchanged", "version": version}
                        continue
                    log.error(
                        "Serving - the local copy of %s v%s differs from the registry's; loading the registry's",
                        name,
                        version,
                    )
                    if self.cache is not None:
                        self.cache.discard(name)
                    current = None  # not served again if the registry's copy cannot be loaded
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
                        if name in self._models:  # a local copy that differs from the registry's
                            self._models = {k: v for k, v in self._models.items() if k != name}
                            self._unchecked.discard(name)
                            kept = None
                    out[name] = {"status": "refused", "version": kept, "refused": version}
                    continue
                self._models = {**self._models, name: loaded}  # atomic swap of the reference
                self._errors.pop(name, None)
                self._refused.pop(name, None)
                self._unchecked.discard(name)
                self._notes.pop(name, None)
                self._copies.pop(name, None)
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

    def needs_registry(self) -> bool:
        """Whether a model is not loaded, or is served from a local copy the registry has not confirmed."""
        return not self.all_loaded() or bool(self._unchecked)

    def status(self) -> dict[str, Any]:
        """Per model: loaded (version, run id, source: registry or local copy, and for a local copy what the
        registry said) or why not; a refused newer champion and why, in generic words."""
        models: dict[str, Any] = {}
        for name in self.names:
            m = self._models.get(name)
            entry: dict[str, Any] = (
                {"loaded": True, "version": m.version, "run_id": m.run_id, "source": m.source}
                if m
                else {"loaded": False, "reason": self._errors.get(name, "not loaded yet")}
            )
            if m is not None and m.source == LOCAL_COPY:
                note = self._notes.get(name, "checking the registry")
                entry["detail"] = f"served from the local copy of v{m.version}; {note}"
            refused = self._refused.get(name)
            if refused is not None:
                entry["refused"] = {"version": refused[0], "reason": refused[1]}
            models[name] = entry
        return models


def _refusal(exc: BaseException) -> str:
    """Why a version was refused, in words that reveal no path, class or trace."""
    from mlflow.exceptions import MlflowException

    if isinstance(exc, ArtifactError):
        return "was refused: its artifact is missing, incomplete or corrupt"
    if isinstance(exc, (MlflowException, OSError)):
        return "was refused: its artifact could not be downloaded"
    return "was refused: it could not be built (the server log has why)"


class Poller:
    """Polls the registry every `interval` seconds and reloads changed champions. With no interval it still
    retries every `retry_s` seconds while a model is not loaded (registry down at start, no champion yet) or is
    served from a local copy the registry has not confirmed, so the API becomes ready, and its copies checked,
    by itself; once every model is loaded and confirmed it only reloads on request.

    After a start from the local copies, `first_s` brings the first poll forward (the delay lets the server
    answer its first probes before MLflow's import, about a second of CPU holding the GIL, begins) and
    `on_first` gets that poll's :meth:`ModelStore.reload` result."""

    def __init__(
        self,
        store: ModelStore,
        interval: float,
        retry_s: float = 5.0,
        first_s: float | None = None,
        on_first: Callable[[dict[str, dict[str, Any]]], None] | None = None,
    ) -> None:
        self.store = store
        self.interval = interval
        self.retry_s = retry_s
        self.first_s = first_s
        self.on_first = on_first
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recur-model-poller", daemon=True)

    def start(self) -> None:
        if self.interval > 0 or self.retry_s > 0 or self.first_s is not None:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _poll(self) -> dict[str, dict[str, Any]] | None:
        """One poll: what :meth:`ModelStore.reload` did, or None (nothing to check, or it failed: logged; the
        thread must outlive any error, and the next poll tries again)."""
        try:
            if self.interval > 0:
                return self.store.reload()
            if self.store.needs_registry():
                return self.store.reload(only_missing=True)
        except Exception:
            log.exception("Serving - model poll failed")
        return None

    def _run(self) -> None:
        period = self.interval if self.interval > 0 else self.retry_s
        first = True
        while not self._stop.wait(self.first_s if first and self.first_s is not None else period):
            result = self._poll()
            if first and result is not None and self.on_first is not None:
                self.on_first(result)
            first = False
