"""What the MLflow registry holds for Recur, and how a registered model answers once loaded.

Each registered version's artifact is data: plain files (``.npy`` arrays, JSON metadata, Prophet JSON, never
pickles) with a manifest (:mod:`ml.registry.artifacts`). The API and the CLI build a runtime from those files
with the installed code (:func:`open_runtime`), after validating every array; they never import code stored in
the registry. The version also carries an MLflow pyfunc flavour built from code (``model_code/*.py``) so that
MLflow tools can load it; only those tools ever run it. A runtime loads its files once and then answers both
the generic pyfunc ``predict`` and the richer calls the API makes (``similar``, ``classify``, ``heatmap`` ...).

Pattern model artifact folder (written by :func:`write_pattern_artifacts`):

- ``pattern_model/``: the fitted :class:`ml.patterns.PatternModel` (centroids, thresholds, stable pattern ids,
  labels, keywords, trends; ``.npy`` + JSON), which classifies new text and seeds the next retrain;
- ``index/``: the :class:`ml.similarity.SimilarityIndex` (dense + BM25, and the root-cause view) of every
  training incident;
- ``incidents.jsonl``: the incidents' metadata, summary, root cause and action items (redacted at ingestion)
  with their assigned pattern (answers, heat maps, reports);
- ``config.json``: embedder id and the training metrics.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

import numpy as np

from ml.errors import InputError, NotFoundError, RecurError
from ml.io.schemas import Incident
from ml.registry.artifacts import (
    ArtifactError,
    check_pattern_artifacts,
    read_manifest,
    write_manifest,
)
from ml.text.embedding import EmbeddingBatcher, available_cores

if TYPE_CHECKING:  # imported on use: the forecaster needs pandas, which a patterns-only server never loads
    from ml.registry.forecaster_runtime import ForecasterRuntime

__all__ = [  # the forecaster's runtime and writer: from ml.registry.forecaster_runtime (they need pandas)
    "CODE_DIR",
    "PatternsRuntime",
    "import_pattern_code",
    "open_runtime",
    "query_embedder",
    "write_pattern_artifacts",
]

log = logging.getLogger(__name__)

CODE_DIR = Path(__file__).resolve().parent / "model_code"


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str), encoding="utf-8")


def write_pattern_artifacts(
    out: Path,
    *,
    model: Any,
    index: Any,
    incidents: Sequence[Incident],
    config: Mapping[str, Any],
) -> Path:
    """Write everything a pattern runtime needs into folder `out` (no pickles)."""
    out.mkdir(parents=True, exist_ok=True)
    model.to_dir(out / "pattern_model")
    index.save(out / "index")
    with (out / "incidents.jsonl").open("w", encoding="utf-8") as fh:
        for inc in incidents:
            # The incidents were redacted at ingestion: their texts are stored as they are.
            row = inc.model_dump(
                mode="json",
                include={
                    "id",
                    "title",
                    "summary",
                    "root_cause",
                    "service",
                    "team",
                    "severity",
                    "started_at",
                    "resolved_at",
                },
            )
            row["action_items"] = [
                a.model_dump(mode="json", include={"id", "title", "status", "closed_at"})
                for a in inc.action_items
            ]
            row["pattern_id"] = int(model.assignments_.get(inc.id, -1))
            fh.write(json.dumps(row, sort_keys=True) + "\n")
    _write_json(out / "config.json", dict(config))
    write_manifest(out, "patterns")
    return out


class _Prepared(NamedTuple):
    vector: np.ndarray  # embedding of the masked, redacted text
    lexical_text: str  # the redacted text, for BM25
    document: str = ""  # the masked, redacted text, for the pattern model's lexical features


K = TypeVar("K")
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """A small thread-safe LRU cache (prepared queries by their raw text; heat maps by normalised arguments)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: K) -> V | None:
        with self._lock:
            v = self._data.get(key)
            if v is not None:
                self._data.move_to_end(key)
            return v

    def put(self, key: K, value: V) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def resize(self, size: int) -> None:
        with self._lock:
            self.size = size
            while len(self._data) > max(size, 0):
                self._data.popitem(last=False)


class PatternsRuntime:
    """A loaded pattern model: similar incidents, classification, patterns and heat maps."""

    def __init__(
        self, root: Path, embedder: Any | None = None, cache_size: int = 2048, heatmap_cache_size: int = 64
    ) -> None:
        from ml.patterns.model import PatternModel
        from ml.patterns.similarity import SimilarityIndex

        self.root = Path(root)
        # every array validated before anything is built from it; the incidents come back validated
        validated = check_pattern_artifacts(self.root)
        self.config: dict[str, Any] = json.loads((self.root / "config.json").read_text(encoding="utf-8"))
        self.index = SimilarityIndex.load(self.root / "index")
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        self.model = PatternModel.from_dir(self.root / "pattern_model", embedder=self.embedder)
        self._incidents: list[Incident] = []
        self.assignments: dict[str, int] = {}
        titles: dict[str, str] = {}
        # summary, root cause and action items: absent from artifacts written before they were stored (the
        # check fills the summary with the title)
        for incident, pattern_id in validated:
            self.assignments[incident.id] = pattern_id
            titles[incident.id] = incident.title
            self._incidents.append(incident)
        self._patterns = [_pattern_view(p.to_dict(), titles) for p in self.model.patterns_]
        self._by_id = {int(p["id"]): p for p in self._patterns}
        self._first_day = min((i.started_at.date() for i in self._incidents), default=None)
        self._cache: LRUCache[str, _Prepared] = LRUCache(cache_size)
        # Concurrent uncached queries share model calls: one worker per core, each a single-threaded model call
        # on at most 8 texts (one call on two threads cost more CPU per text, and larger batches made the
        # slowest callers wait; bench/bench_api.py).
        self._batcher = EmbeddingBatcher(
            lambda texts: self.embedder.encode(texts), max_batch=8, workers=available_cores()
        )
        # Heat maps (tables, PNGs, HTML pages of up to a few MB) by normalised arguments, bounded.
        self._heat_cache: LRUCache[tuple[str, ...], Any] = LRUCache(heatmap_cache_size)

    def configure_caches(self, query: int | None = None, heatmap: int | None = None) -> None:
        """Resize the LRU caches: prepared queries and heat maps (0 turns one off)."""
        if query is not None:
            self._cache.resize(query)
        if heatmap is not None:
            self._heat_cache.resize(heatmap)

    # ------------------------------------------------------------------ embedding
    def configure_embedding(self, runtime: str) -> None:
        """Embed pasted texts with a query embedder of `runtime` (:func:`query_embedder`), loaded now. Call before
        the first query."""
        embedder = query_embedder(runtime)
        with self._embedder_lock:
            self._embedder = embedder
            self.model.embedder = embedder

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            with self._embedder_lock:
                if self._embedder is None:
                    from ml.text.embedding import Embedder

                    # Loads lazily, on the first encode: the ONNX export when there (no torch import), else
                    # torch; a server never exports (that needs torch and seconds of start-up).
                    self._embedder = Embedder(batch_size=32, export=False, threads=1)
        return self._embedder

    def prepare(self, text: str) -> _Prepared:
        """The query prepared for search: its vector (from the text prepared like the model's documents:
        redacted, service names masked) and its redacted text for BM25. Cached (LRU, by the raw text), so a
        repeated query costs neither the model nor the redaction."""
        hit = self._cache.get(text)
        if hit is not None:
            return hit
        from ml.text.redaction import redact

        # Redacted once, here: the BM25 text, and what the embedding text is built from (the builder's own
        # redaction then finds nothing left to replace).
        redacted = redact(text)
        document = self.model.prepare_text(redacted)
        prepared = _Prepared(self._batcher(document), redacted, document)
        self._cache.put(text, prepared)
        return prepared

    def cached(self, text: str) -> _Prepared | None:
        """The prepared query if it is in the LRU cache (no model call), else ``None``."""
        return self._cache.get(text)

    def embed(self, text: str) -> np.ndarray:
        """The query's vector (see :meth:`prepare`)."""
        return self.prepare(text).vector

    def warm_up(self) -> None:
        """Load the embedding model now rather than on the first request."""
        self.embed("warm up")

    # ------------------------------------------------------------------ patterns
    def pattern_name(self, pid: int) -> str:
        return "unclustered" if pid < 0 else str(self._by_id.get(pid, {}).get("name", f"pattern {pid}"))

    def classify_vec(self, vec: np.ndarray, document: str = "") -> dict[str, Any]:
        """The pattern of a prepared query: its vector and its prepared text (:meth:`prepare`)."""
        ids, conf = self.model.assign(np.asarray(vec, dtype=np.float32)[None, :], docs=[document])
        pid, c = int(ids[0]), round(float(conf[0]), 4)
        return {
            "pattern_id": pid,
            "pattern_name": self.pattern_name(pid),
            "confidence": c,
            "unclustered": pid < 0,
        }

    def classify(self, text: str) -> dict[str, Any]:
        prepared = self.prepare(text)
        return self.classify_vec(prepared.vector, prepared.document)

    def patterns(self) -> list[dict[str, Any]]:
        return self._patterns

    def pattern(self, pattern_id: int) -> dict[str, Any]:
        if pattern_id not in self._by_id:
            raise NotFoundError(
                f"no pattern {pattern_id}; see GET /v1/patterns", field="pattern_id", value=pattern_id
            )
        return self._by_id[pattern_id]

    def unclustered_count(self) -> int:
        return sum(1 for v in self.assignments.values() if v < 0)

    # ------------------------------------------------------------------ similarity
    @staticmethod
    def _match_dict(m: Any) -> dict[str, Any]:
        d = m.to_dict()
        d["score"] = round(float(d["score"]), 6)
        d["dense_score"] = None if d["dense_score"] is None else round(float(d["dense_score"]), 4)
        d["lexical_score"] = round(float(d["lexical_score"]), 4)
        return dict(d)

    def _incident_by_id(self) -> dict[str, Incident]:
        by_id: dict[str, Incident] | None = self.__dict__.get("_incident_map")
        if by_id is None:
            by_id = {inc.id: inc for inc in self._incidents}
            members: dict[int, list[Incident]] = {}
            for inc in self._incidents:
                members.setdefault(self.assignments.get(inc.id, -1), []).append(inc)
            self._members, self._incident_map = members, by_id
        return by_id

    def _answer(self, m: Any) -> dict[str, Any]:
        """A match as the API answers it: its root cause (shortened), action items, and pattern with how often
        it recurred and when last."""
        from ml.patterns.answers import action_items_view, day, shorten

        d = self._match_dict(m)
        inc = self._incident_by_id().get(d["id"])
        d["root_cause"] = shorten(inc.root_cause) if inc is not None else None
        d["action_items"] = action_items_view(inc)
        p = self._by_id.get(int(d["pattern_id"])) if d["pattern_id"] >= 0 else None
        d["pattern"] = (
            {"id": p["id"], "name": p["name"], "seen": p["size"], "last_seen": day(p.get("last_seen"))}
            if p
            else None
        )
        return d

    def suggestion(
        self, matches: Sequence[Mapping[str, Any]], query_pattern: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        """The fix to try, from an answer's matches and the query's pattern, or ``None`` when the evidence is
        weak (:func:`ml.patterns.answers.suggest`)."""
        from ml.patterns.answers import suggest

        pid = int(query_pattern["pattern_id"]) if query_pattern else -1
        by_id = self._incident_by_id()
        members = self._members.get(pid, []) if pid >= 0 else []
        return suggest(query_pattern, matches, self._by_id.get(pid), members, by_id)

    def similar(
        self,
        text: str,
        k: int = 5,
        service: str | None = None,
        team: str | None = None,
        since: dt.date | None = None,
        prepared: _Prepared | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Similar incidents to a free text; ``prepared`` is the text's :meth:`prepare` when the caller has it."""
        prepared = self.prepare(text) if prepared is None else prepared
        vec = prepared.vector
        qp = self.classify_vec(vec, prepared.document)
        matches = self.index.query(
            vec,
            prepared.lexical_text,
            k=k,
            service=service,
            team=team,
            since=since,
            query_pattern_id=qp["pattern_id"] if qp["pattern_id"] >= 0 else None,
        )
        return [self._answer(m) for m in matches], {
            "pattern_id": qp["pattern_id"],
            "pattern_name": qp["pattern_name"],
            "confidence": qp["confidence"],
        }

    def similar_to(
        self,
        incident_id: str,
        k: int = 5,
        service: str | None = None,
        team: str | None = None,
        since: dt.date | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        if incident_id not in self.index:
            raise NotFoundError(
                f"no incident {incident_id!r} in the model", field="incident_id", value=incident_id
            )
        matches = self.index.query_incident(incident_id, k=k, service=service, team=team, since=since)
        pid = self.assignments.get(incident_id, -1)
        return [self._answer(m) for m in matches], {
            "pattern_id": pid,
            "pattern_name": self.pattern_name(pid),
            "confidence": None,  # its own pattern, not a classification
        }

    # ------------------------------------------------------------------ heat maps
    @property
    def incidents(self) -> list[Incident]:
        return self._incidents

    def _clamp(self, since: dt.date | None) -> dt.date | None:
        """None for a start on or before the first incident: an earlier start only adds empty months (and a
        start in year 0231 would add 21,000 of them)."""
        if since is not None and self._first_day is not None and since <= self._first_day:
            return None
        return since

    def _heat_args(
        self, by: str, period: str, since: dt.date | str | None
    ) -> tuple[str, str, dt.date | None]:
        """Validated, normalised heat-map arguments, so equal requests share one cache entry: ``by`` and
        ``period`` lower-case (``period`` only matters for ``by=month``), ``since`` a date, clamped."""
        by, period = str(by).strip().lower(), str(period).strip().lower()
        if by not in ("service", "team", "month"):
            raise InputError(f"by must be service, team or month, got {by!r}", field="by", value=by)
        if period not in ("month", "quarter", "year"):
            raise InputError(
                f"period must be month, quarter or year, got {period!r}", field="period", value=period
            )
        if by != "month":
            period = "month"
        if isinstance(since, dt.datetime):
            since = since.date()
        elif isinstance(since, str):
            try:
                since = dt.date.fromisoformat(since.strip())
            except ValueError:
                raise InputError(f"since must be a date (YYYY-MM-DD), got {since!r}", field="since") from None
        return by, period, self._clamp(since)

    def heatmap_table(
        self, by: str = "service", period: str = "month", since: dt.date | str | None = None
    ) -> Any:
        from ml.patterns.heatmap import heatmap_table

        by, period, since = self._heat_args(by, period, since)
        key = ("table", by, period, since.isoformat() if since else "")
        table = self._heat_cache.get(key)
        if table is None:
            names = {int(p["id"]): str(p["name"]) for p in self._patterns}
            table = heatmap_table(self._incidents, self.assignments, names, by=by, since=since)  # type: ignore[arg-type]
            if by == "month" and period != "month":
                buckets = [_bucket(c, period) for c in table.columns]
                table = table.T.groupby(buckets, sort=True).sum().T
                table.columns.name = period
            self._heat_cache.put(key, table)
        return table

    def heatmap(
        self, by: str = "service", period: str = "month", since: dt.date | None = None
    ) -> dict[str, Any]:
        table = self.heatmap_table(by, period, since)
        rows = [f"{pid}: {name}" if pid >= 0 else str(name) for pid, name in table.index]
        return {
            "rows": rows,
            "columns": [str(c) for c in table.columns],
            "values": table.to_numpy().astype(int).tolist(),
        }

    def heatmap_png(self, by: str = "service", period: str = "month", since: dt.date | None = None) -> bytes:
        import tempfile

        from ml.patterns.heatmap import render_png

        by, period, since = self._heat_args(by, period, since)
        key = ("png", by, period, since.isoformat() if since else "")
        png = self._heat_cache.get(key)
        if png is None:
            table = self.heatmap_table(by, period, since)
            with tempfile.TemporaryDirectory() as tmp:
                png = render_png(table, _heat_title(by, period), Path(tmp) / "heat.png").read_bytes()
            self._heat_cache.put(key, png)
        return png

    def heatmap_html(self, by: str = "service", period: str = "month", since: dt.date | None = None) -> str:
        import tempfile

        from ml.patterns.heatmap import render_html

        by, period, since = self._heat_args(by, period, since)
        key = ("html", by, period, since.isoformat() if since else "")
        html = self._heat_cache.get(key)
        if html is None:
            table = self.heatmap_table(by, period, since)
            with tempfile.TemporaryDirectory() as tmp:
                html = render_html(table, _heat_title(by, period), Path(tmp) / "heat.html").read_text(
                    encoding="utf-8"
                )
            self._heat_cache.put(key, html)
        return html

    # ------------------------------------------------------------------ pyfunc
    def predict_frame(self, frame: Any, k: int = 5) -> Any:
        import pandas as pd

        if "text" not in frame.columns:
            raise InputError("model input needs a 'text' column", field="text")
        rows = []
        for text in frame["text"].astype(str):
            matches, qp = self.similar(text, k=k)
            rows.append(
                {
                    "pattern_id": qp["pattern_id"] if qp else -1,
                    "pattern_name": qp["pattern_name"] if qp else "unclustered",
                    "confidence": qp.get("confidence") if qp else None,
                    "neighbours": json.dumps([m["id"] for m in matches]),
                }
            )
        return pd.DataFrame(rows)


def query_embedder(runtime: str) -> Any:
    """A query embedder of `runtime` (``"onnx-int8"``, ``"onnx"``, ``"torch"`` or ``"auto"``,
    :class:`~ml.text.embedding.Embedder`'s), loaded now: a missing export shows here, not on a responder's query.
    The index keeps the vectors made at training; int8 query vectors stay within cosine 0.993 of fp32 ones and move
    P@5 / MRR by at most +0.005 on the three corpora (``bench/bench_retrieval.py --query-runtime onnx-int8``) for
    about 40% less CPU per query. An ONNX runtime whose export is missing falls back to ``"auto"`` (fp32 ONNX when
    there, else torch), logged. It depends on no artifact, so one serves every version loaded."""
    from ml.errors import ModelUnavailableError
    from ml.text.embedding import RUNTIMES, Embedder

    if runtime not in RUNTIMES:
        raise InputError(
            f"query runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}",
            field="runtime",
            value=runtime,
        )
    embedder = Embedder(batch_size=32, export=False, threads=1, runtime=runtime)
    try:
        backend = embedder.backend
    except ModelUnavailableError as exc:
        log.warning("Serving - query runtime %s unavailable (%s); using auto", runtime, exc)
        embedder = Embedder(batch_size=32, export=False, threads=1)
        backend = embedder.backend
    log.info("Serving - queries embedded with %s", backend)
    return embedder


def import_pattern_code() -> None:
    """Import the modules a pattern runtime is built with (about half a second), e.g. while its artifact is
    still being fetched; :class:`PatternsRuntime` imports them on use otherwise."""
    import ml.patterns.model
    import ml.patterns.similarity  # noqa: F401


def _pattern_view(p: dict[str, Any], titles: Mapping[str, str]) -> dict[str, Any]:
    """A pattern as the API and the report show it."""
    trend = p.get("trend") or {}
    return {
        "id": int(p["id"]),
        "name": p["name"],
        "keywords": list(p["keywords"]),
        "size": int(p["size"]),
        "trend": str(trend.get("direction", "flat")),
        "trend_slope": trend.get("slope"),
        "recent": int(sum(trend.get("counts") or [])),
        "representatives": [{"id": i, "title": titles.get(i, i)} for i in p.get("representative_ids", [])],
        "first_seen": p.get("first_seen"),
        "last_seen": p.get("last_seen"),
    }


def _bucket(month: str, period: str) -> str:
    year, mon = month.split("-")
    return year if period == "year" else f"{year}-Q{(int(mon) - 1) // 3 + 1}"


def _heat_title(by: str, period: str) -> str:
    return f"Incidents per failure pattern and {by if by != 'month' else period}"


def open_runtime(root: Path, kind: str | None = None, **options: Any) -> PatternsRuntime | ForecasterRuntime:
    """Build the runtime of the artifact folder `root` with the installed code, from its data files only (its
    manifest says which kind; `kind`, when given, must match). `options` go to the runtime's constructor.
    Raises :class:`ArtifactError` naming the file for anything invalid; nothing in the folder is imported."""
    root = Path(root)
    found = read_manifest(root)["kind"]
    if kind is not None and found != kind:
        raise ArtifactError(
            f"model artifact {root}: holds a {found} model, expected {kind}",
            field="artifact",
            value=str(root),
        )
    try:
        if found == "patterns":
            return PatternsRuntime(root, **options)
        from ml.registry.forecaster_runtime import ForecasterRuntime

        return ForecasterRuntime(root, **options)
    except ArtifactError:
        raise
    except RecurError as exc:  # the installed code refused a value the checks let through
        raise ArtifactError(
            f"model artifact {root}: {exc.message}", field="artifact", value=str(root)
        ) from exc
    except (ValueError, KeyError, TypeError, IndexError, OSError, UnicodeDecodeError) as exc:
        # The checks passed but the installed code still could not read a value: refuse the artifact.
        log.warning("Registry - artifact %s could not be built: %s: %s", root, type(exc).__name__, exc)
        raise ArtifactError(
            f"model artifact {root}: could not be built ({type(exc).__name__})",
            field="artifact",
            value=str(root),
        ) from exc


def __getattr__(name: str) -> Any:
    """The pyfunc wrappers moved to :mod:`ml.registry.pyfunc`; versions registered before load them from here.
    The forecaster's runtime and writer are imported on first use (they need pandas)."""
    if name in ("PatternsPyfunc", "ForecasterPyfunc"):
        from ml.registry import pyfunc

        return getattr(pyfunc, name)
    if name in ("ForecasterRuntime", "write_forecaster_artifacts"):
        from ml.registry import forecaster_runtime

        return getattr(forecaster_runtime, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
