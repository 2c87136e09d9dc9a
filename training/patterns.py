"""`recur train patterns`: mine failure patterns, log the run to MLflow, register `incident-patterns`, and
promote it to `champion` when it is no worse than the current champion on the same evaluation."""

from __future__ import annotations

import csv
import json
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from ml.errors import InputError, StrictModeError
from ml.io.schemas import Incident
from ml.patterns.ids import ONE_OFF
from ml.registry.artifacts import ArtifactError, check_artifacts, fetch_version
from ml.registry.names import PATTERNS_MODEL
from ml.registry.runtimes import CODE_DIR, write_pattern_artifacts
from training import tracking
from training.ingest import load_incidents
from training.settings import Settings

log = logging.getLogger(__name__)

EXPERIMENT = "incident-patterns"
PATTERNS_SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "text")]),
    outputs=Schema(
        [
            ColSpec("long", "pattern_id"),
            ColSpec("string", "pattern_name"),
            ColSpec("double", "confidence"),
            ColSpec("string", "neighbours"),
        ]
    ),
    params=ParamSchema([ParamSpec("k", "long", 5)]),
)


def gate_score(
    model: Any,
    X: np.ndarray,
    docs: Sequence[str],
    incidents: Sequence[Incident],
    held_out: Sequence[Incident] = (),
) -> tuple[str, float | None]:
    """The quality-gate figure of a pattern model on this evaluation set (`X`: the model's vectors of `docs`):
    ARI against the analyst labels of the held-out incidents (never shown to the fit) when there are at least
    10; else ARI against the known pattern labels when the incidents carry them (one-offs left out); else the
    cosine silhouette of the clustered incidents."""
    from sklearn.metrics import adjusted_rand_score, silhouette_score

    labels, _ = model.assign(X, docs=list(docs))
    if len(held_out) >= 10:
        pos = {inc.id: i for i, inc in enumerate(incidents)}
        idx = [pos[inc.id] for inc in held_out]
        truth_held = [inc.root_cause_category for inc in held_out]
        return "gate_ari_held_out", float(adjusted_rand_score(truth_held, labels[idx]))
    truth = [inc.pattern for inc in incidents]
    if sum(t is not None for t in truth) >= 10:
        sel = [i for i, t in enumerate(truth) if t is not None and t != ONE_OFF]
        return "gate_ari", float(adjusted_rand_score([truth[i] for i in sel], labels[sel]))
    mask = labels >= 0
    if mask.sum() < 3 or len(set(labels[mask].tolist())) < 2:
        return "gate_silhouette", None
    return "gate_silhouette", float(silhouette_score(X[mask], labels[mask], metric="cosine"))


def _load_champion_model(embedder: Any) -> tuple[Any, str] | None:
    from ml.patterns.model import PatternModel

    champ = tracking.alias_version(PATTERNS_MODEL, tracking.CHAMPION)
    if champ is None:
        return None
    tmp = Path(tempfile.mkdtemp(prefix="recur-champion-"))
    try:
        root = fetch_version(mlflow.get_tracking_uri(), PATTERNS_MODEL, str(champ.version), dest=tmp)
        check_artifacts(root, "patterns")  # validated before anything is built from it
        return PatternModel.from_dir(root / "pattern_model", embedder=embedder), str(champ.version)
    except ArtifactError as exc:
        log.warning("Patterns - champion v%s is unusable, training from scratch: %s", champ.version, exc)
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_outputs(out: Path, model: Any, incidents: Sequence[Incident]) -> list[Path]:
    from ml.patterns.heatmap import heatmap_table, render_csv, render_html, render_png

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with (out / "assignments.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["incident_id", "pattern_id"])
        for inc in incidents:
            w.writerow([inc.id, model.assignments_.get(inc.id, -1)])
    written.append(out / "assignments.csv")
    patterns = [
        {
            "id": p.id,
            "name": p.name,
            "keywords": p.keywords,
            "size": p.size,
            "representative_ids": p.representative_ids,
            "trend": p.trend,
            "first_seen": p.first_seen,
            "last_seen": p.last_seen,
        }
        for p in model.patterns_
    ]
    (out / "patterns.json").write_text(
        json.dumps(patterns, indent=2, sort_keys=True, default=str), encoding="utf-8"
    )
    written.append(out / "patterns.json")
    names = {p.id: p.name for p in model.patterns_}
    for by in ("service", "team", "month"):
        table = heatmap_table(list(incidents), model.assignments_, names, by=by)
        title = f"Incidents per failure pattern and {by}"
        written += [
            render_png(table, title, out / f"heatmap_{by}.png"),
            render_html(table, title, out / f"heatmap_{by}.html"),
            render_csv(table, out / f"heatmap_{by}.csv"),
        ]
    return written


def train_patterns(
    settings: Settings,
    incidents_paths: Sequence[Path],
    *,
    out: Path | None = None,
    promote: bool = False,
    strict: bool = False,
    seed: int = 42,
    min_cluster_size: int | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Run the whole job; returns a JSON-able summary (run id, version, metrics, promotion)."""
    from ml.patterns.clustering import PatternClusterer
    from ml.patterns.model import PatternModel, split_labels
    from ml.text.embedding import Embedder

    read = load_incidents(list(incidents_paths))  # redacted, once, here
    if strict and read.quarantined:
        raise StrictModeError(
            f"{read.quarantined} incident record(s) rejected (first: {read.rejects[0]})", field="incidents"
        )
    incidents = read.records
    if len(incidents) < 10:
        raise InputError(
            f"only {len(incidents)} valid incidents: pattern mining needs at least 10", field="incidents"
        )
    tracking.configure(settings)
    embedder = Embedder(cache_dir=settings.cache_dir / "embeddings", show_progress=show_progress)
    previous = _load_champion_model(embedder)
    # The pattern model clusters the root-cause view with service names masked (a pattern is how things
    # failed, across services); the similarity index embeds the whole text, and keeps the full text for its
    # lexical side, where the service matters. Analyst labels of a held-out share are hidden from the fit and
    # score the model instead.
    model = PatternModel(
        embedder=embedder,
        clusterer=PatternClusterer(
            random_state=seed, min_cluster_size=min_cluster_size or "auto", outlier_threshold="auto"
        ),
    )
    for_fit, held_out = split_labels(incidents, held_out=0.3, seed=seed)
    model.fit(for_fit, previous=previous[0] if previous else None)
    docs, X = model.documents_, model.vectors_  # the prepared corpus of the fit: built and embedded once
    index_builder = model.index_builder(incidents)
    index = model.similarity_index(incidents, embeddings=embedder.encode(index_builder.build_many(incidents)))
    gate_metric, candidate_score = gate_score(model, X, docs, incidents, held_out)
    champion_score = (
        gate_score(previous[0], X, previous[0].documents(incidents), incidents, held_out)[1]
        if previous
        else None
    )

    metrics = {k: float(v) for k, v in model.metrics_.items() if v is not None and np.isfinite(v)}
    metrics.update(
        {
            "n_patterns": float(len(model.patterns_)),
            "records_in": float(read.records_in),
            "records_quarantined": float(read.quarantined),
            "embedding_cache_hits": float(embedder.stats.get("hits", 0)),
            "embedding_cache_misses": float(embedder.stats.get("misses", 0)),
        }
    )
    if candidate_score is not None:
        metrics[gate_metric] = candidate_score
    if champion_score is not None:
        metrics[f"champion_{gate_metric}"] = champion_score
    params = {
        "incidents": ",".join(str(p) for p in incidents_paths),
        "seed": seed,
        "embedding_model": embedder.model_id,
        "document_view": type(model.builder_).__name__,
        "document_fields": ",".join(model.builder_.fields),
        "index_fields": ",".join(index_builder.fields),
        "mask_entities": model.builder_.mask_entities,
        "lexical_weight": model.features_.lexical_weight,
        "labels_guiding": int(model.metrics_.get("n_labelled", 0)),
        "labels_held_out": len(held_out),
        **{f"clusterer.{k}": v for k, v in model.clusterer_.get_params().items()},
        "clusterer.chosen_algorithm": getattr(model.clusterer_, "algorithm_", "hdbscan"),
        "clusterer.chosen_min_cluster_size": model.clusterer_.min_cluster_size_,
        "clusterer.chosen_min_samples": model.clusterer_.min_samples_,
        "clusterer.chosen_method": model.clusterer_.cluster_selection_method_,
        "clusterer.chosen_dense_groups": getattr(model.clusterer_, "n_dense_groups_", 0),
        **{f"labeller.{k}": v for k, v in model.labeller_.get_params().items()},
        **{f"index.{k}": v for k, v in index.get_params().items()},
        "previous_champion": previous[1] if previous else "none",
    }
    with tempfile.TemporaryDirectory(prefix="recur-patterns-") as tmp:
        tmp_path = Path(tmp)
        model_dir = write_pattern_artifacts(
            tmp_path / "model",
            model=model,
            index=index,
            incidents=incidents,
            config={"embedding_model": embedder.model_id, "metrics": metrics, "seed": seed},
        )
        report_dir = tmp_path / "outputs"
        _write_outputs(report_dir, model, incidents)
        with tracking.run(
            EXPERIMENT, settings, run_name="patterns", tags={"recur.job": "train patterns"}
        ) as run:
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            mlflow.log_metrics(metrics)
            # the granularity search: every candidate tried, the one chosen, and any warning
            mlflow.log_dict(
                {"candidates": model.granularity_, "warnings": model.warnings_}, "granularity/search.json"
            )
            mlflow.set_tag("recur.pattern_warnings", "; ".join(model.warnings_)[:4000] or "none")
            mlflow.log_artifacts(str(report_dir), artifact_path="outputs")
            if read.rejects:
                mlflow.log_dict({"rejects": [str(r) for r in read.rejects]}, "quarantine.json")
            version = tracking.log_pyfunc(
                model_name=PATTERNS_MODEL,
                code_file=CODE_DIR / "patterns.py",
                artifacts={"model_dir": str(model_dir)},
                signature=PATTERNS_SIGNATURE,
                metadata={"gate_metric": gate_metric, "n_patterns": len(model.patterns_)},
            )
            promotion = None
            if promote:
                promotion = tracking.promote(
                    PATTERNS_MODEL,
                    str(version.version),
                    metric=gate_metric,
                    new_value=candidate_score,
                    champion_value=champion_score,
                    tolerance=0.01,
                )
                mlflow.set_tag("recur.promotion", promotion.reason)
            run_id = run.info.run_id
        if out is not None:
            _write_outputs(out, model, incidents)
    return {
        "run_id": run_id,
        "model": PATTERNS_MODEL,
        "version": str(version.version),
        "metrics": metrics,
        "patterns": [
            {"id": p.id, "name": p.name, "size": p.size, "trend": p.trend["direction"]}
            for p in model.patterns_
        ],
        "id_changes": model.id_changes_,
        "quarantined": read.quarantined,
        "promotion": promotion.to_dict() if promotion else None,
    }
