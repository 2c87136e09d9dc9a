"""Model artifacts are data: the API never runs code from the registry, and every array is validated before a
runtime is built from it (a corrupt artifact is refused with the file named, in this process, without a crash:
a segfault here would kill pytest, which is the point)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from ml.registry.artifacts import MANIFEST, ArtifactError, check_artifacts, fetch_version, write_manifest
from ml.registry.names import CHAMPION, PATTERNS_MODEL
from ml.registry.runtimes import open_runtime
from tests.conftest import SAMPLE
from training.settings import Settings

pytestmark = pytest.mark.slow  # trains a model into a real MLflow store


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A pattern model trained on 60 sample incidents into a fresh SQLite store, promoted to champion."""
    from training.patterns import train_patterns

    root = tmp_path_factory.mktemp("artifacts-store")
    incidents = root / "incidents.jsonl"
    incidents.write_text(
        "".join((SAMPLE / "incidents.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)[:60]),
        encoding="utf-8",
    )
    settings = Settings(
        mlflow_tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        mlflow_artifact_root=root / "artifacts",
        cache_dir=Path(os.environ.get("RECUR_TEST_CACHE", root / "cache")),
    )
    result = train_patterns(settings, [incidents], promote=True, show_progress=False)
    return {"settings": settings, "uri": settings.tracking_uri, "result": result, "root": root}


@pytest.fixture()
def artifact(small_store: dict, tmp_path: Path) -> Path:
    """A fresh local copy of the champion's data artifact."""
    return fetch_version(
        str(small_store["uri"]), PATTERNS_MODEL, str(small_store["result"]["version"]), tmp_path
    )


def _stored_model_dir(uri: str, version: str) -> Path:
    """Where the registry keeps the files of `version` (a local artifact store)."""
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    location = client.get_model_version_download_uri(PATTERNS_MODEL, version)
    return Path(location.removeprefix("file://"))


# ------------------------------------------------------------------------------------------ item 10: no code


def test_serving_never_runs_code_stored_in_the_registry(small_store: dict, tmp_path: Path) -> None:
    """Replace the registered version's model-code file with code that writes a marker file. MLflow's own loader
    runs it (the threat is real); the API's store and the CLI's loader build the model from the data files and
    never create the marker."""
    import mlflow

    from serving.models import ModelStore
    from training.champions import load_runtime

    uri, version = str(small_store["uri"]), str(small_store["result"]["version"])
    code = _stored_model_dir(uri, version) / "patterns.py"
    assert code.is_file()
    original = code.read_text(encoding="utf-8")
    marker = tmp_path / "pwned"
    evil = f"from pathlib import Path as _P\n_P({str(marker)!r}).write_text('ran')\n"
    code.write_text(evil + original, encoding="utf-8")
    try:
        mlflow.set_registry_uri(uri)
        mlflow.pyfunc.load_model(f"models:/{PATTERNS_MODEL}/{version}")
        assert marker.exists(), "control: MLflow's pyfunc loader runs the artifact's code"
        marker.unlink()

        store = ModelStore(uri, names=(PATTERNS_MODEL,))
        assert store.reload()[PATTERNS_MODEL]["status"] == "loaded"
        runtime = store.get(PATTERNS_MODEL).runtime
        first = runtime.incidents[0].id
        matches, _ = runtime.similar_to(first, k=3)
        assert len(matches) == 3 and first not in [m["id"] for m in matches]
        runtime_cli, v = load_runtime(small_store["settings"], PATTERNS_MODEL)  # type: ignore[arg-type]
        assert v == version and runtime_cli.similar_to(first, k=1)[0]
        assert not marker.exists(), "the API or the CLI ran code stored in the registry"
    finally:
        code.write_text(original, encoding="utf-8")


# ------------------------------------------------------------------------------------------ item 6: validation


def _save(path: Path, arr: np.ndarray) -> None:
    np.save(path, arr, allow_pickle=False)


def _out_of_range_term(root: Path) -> None:
    f = root / "index" / "tf_indices.npy"
    a = np.load(f)
    a[len(a) // 2] = 2_000_000_000  # far outside the vocabulary: scipy would read (or write) out of bounds
    _save(f, a)


def _negative_term(root: Path) -> None:
    f = root / "index" / "tf_indices.npy"
    a = np.load(f)
    a[0] = -5
    _save(f, a)


def _indptr_not_monotone(root: Path) -> None:
    f = root / "index" / "tf_indptr.npy"
    a = np.load(f)
    a[3], a[4] = a[4], a[3] - 1
    _save(f, a)


def _indptr_past_the_end(root: Path) -> None:
    f = root / "index" / "tf_indptr.npy"
    a = np.load(f)
    a[-1] += 1000
    _save(f, a)


def _truncated_npy(root: Path) -> None:
    f = root / "index" / "embeddings.npy"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _huge_header(root: Path) -> None:
    """A header that claims 10^12 rows: refused before numpy would try to allocate them."""
    f = root / "pattern_model" / "reduced.npy"
    arr = np.load(f)
    with f.open("wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f4", "fortran_order": False, "shape": (10**12, arr.shape[1])}
        )
        fh.write(arr.tobytes())


def _nan_centroid(root: Path) -> None:
    f = root / "pattern_model" / "centroids.npy"
    a = np.load(f)
    a[0, 0] = np.nan
    _save(f, a)


def _inf_embedding(root: Path) -> None:
    f = root / "index" / "embeddings.npy"
    a = np.load(f)
    a[1, 2] = np.inf
    _save(f, a)


def _wrong_dtype(root: Path) -> None:
    f = root / "pattern_model" / "thresholds.npy"
    _save(f, np.load(f).astype(np.float64))


def _wrong_shape(root: Path) -> None:
    f = root / "pattern_model" / "centroids.npy"
    a = np.load(f)
    _save(f, a[:, :-1])


def _pickled_objects(root: Path) -> None:
    f = root / "index" / "started_at.npy"
    np.save(f, np.array([{"x": 1}] * 60, dtype=object), allow_pickle=True)


def _duplicate_ids(root: Path) -> None:
    f = root / "index" / "index.json"
    meta = json.loads(f.read_text(encoding="utf-8"))
    meta["incidents"][1]["id"] = meta["incidents"][0]["id"]
    f.write_text(json.dumps(meta), encoding="utf-8")


def _duplicate_pattern_ids(root: Path) -> None:
    f = root / "pattern_model" / "pattern_ids.npy"
    a = np.load(f)
    if len(a) < 2:
        pytest.skip("the small model has a single pattern")
    a[1] = a[0]
    _save(f, a)


def _bad_json(root: Path) -> None:
    (root / "pattern_model" / "model.json").write_text("{not json", encoding="utf-8")


# (corruption, file named in the error); the manifest is rewritten after each, as an attacker with write access
# to the registry would do, so that the array checks themselves are what refuses the artifact.
CORRUPTIONS: list[tuple[Callable[[Path], None], str]] = [
    (_out_of_range_term, "tf_indices.npy"),
    (_negative_term, "tf_indices.npy"),
    (_indptr_not_monotone, "tf_indptr.npy"),
    (_indptr_past_the_end, "tf_indptr.npy"),
    (_truncated_npy, "embeddings.npy"),
    (_huge_header, "reduced.npy"),
    (_nan_centroid, "centroids.npy"),
    (_inf_embedding, "embeddings.npy"),
    (_wrong_dtype, "thresholds.npy"),
    (_wrong_shape, "centroids.npy"),
    (_pickled_objects, "started_at.npy"),
    (_duplicate_ids, "index.json"),
    (_duplicate_pattern_ids, "pattern_ids.npy"),
    (_bad_json, "model.json"),
]


def test_a_valid_artifact_builds(artifact: Path) -> None:
    assert check_artifacts(artifact) == "patterns"
    runtime = open_runtime(artifact, "patterns")
    assert runtime.patterns() and len(runtime.incidents) == 60


@pytest.mark.parametrize(
    ("corrupt", "named"), CORRUPTIONS, ids=[c.__name__.strip("_") for c, _ in CORRUPTIONS]
)
def test_corrupt_array_is_refused_naming_the_file(
    artifact: Path, corrupt: Callable[[Path], None], named: str
) -> None:
    corrupt(artifact)
    write_manifest(artifact, "patterns")
    with pytest.raises(ArtifactError, match=named) as info:
        open_runtime(artifact, "patterns")
    assert "\n" not in str(info.value)


def test_changed_file_without_a_new_manifest_is_refused(artifact: Path) -> None:
    _truncated_npy(artifact)
    with pytest.raises(ArtifactError, match=r"embeddings\.npy: has \d+ bytes, the manifest says"):
        open_runtime(artifact)
    _save(artifact / "index" / "embeddings.npy", np.zeros((60, 384), dtype=np.float32))
    with pytest.raises(ArtifactError, match="differs from the manifest's SHA-256"):
        open_runtime(artifact)


def test_missing_file_is_refused(artifact: Path) -> None:
    (artifact / "index" / "tf_data.npy").unlink()
    with pytest.raises(ArtifactError, match=r"tf_data\.npy: missing"):
        open_runtime(artifact)


def test_artifact_without_manifest_or_of_another_kind_is_refused(artifact: Path) -> None:
    with pytest.raises(ArtifactError, match="expected forecaster"):
        open_runtime(artifact, "forecaster")
    manifest = json.loads((artifact / MANIFEST).read_text(encoding="utf-8"))
    (artifact / MANIFEST).write_text(
        json.dumps({**manifest, "format": "recur.artifact/99"}), encoding="utf-8"
    )
    with pytest.raises(ArtifactError, match="format"):
        open_runtime(artifact)
    (artifact / MANIFEST).write_text(
        json.dumps(
            {**manifest, "files": {**manifest["files"], "../../etc/passwd": {"bytes": 1, "sha256": "0"}}}
        ),
        encoding="utf-8",
    )
    with pytest.raises(ArtifactError, match="outside the artifact folder"):
        open_runtime(artifact)
    (artifact / MANIFEST).unlink()
    with pytest.raises(ArtifactError, match="missing"):
        open_runtime(artifact)


# ------------------------------------------------------------------------------------------ registry faults


def test_store_keeps_the_old_model_when_the_new_champion_is_corrupt(
    small_store: dict, tmp_path: Path
) -> None:
    """A new version whose stored files are then corrupted is promoted: reload refuses it, the old version keeps
    answering, and the status says why in generic words (no path, no exception class)."""
    from serving.models import ModelStore
    from training import tracking

    uri, old = str(small_store["uri"]), str(small_store["result"]["version"])
    store = ModelStore(uri, names=(PATTERNS_MODEL,))
    assert store.reload()[PATTERNS_MODEL]["status"] == "loaded"
    local = fetch_version(uri, PATTERNS_MODEL, old, tmp_path / "copy")
    tracking.configure(small_store["settings"])  # type: ignore[arg-type]
    import mlflow

    with tracking.run("fault-tests", small_store["settings"]):  # type: ignore[arg-type]
        new = str(
            tracking.log_pyfunc(
                model_name=PATTERNS_MODEL,
                code_file=tracking_code_file(),
                artifacts={"model_dir": str(local)},
            ).version
        )
    stored = _stored_model_dir(uri, new)
    try:
        _out_of_range_term(next(stored.rglob(MANIFEST)).parent)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.set_registered_model_alias(PATTERNS_MODEL, CHAMPION, new)
        result = store.reload()[PATTERNS_MODEL]
        assert result == {"status": "refused", "version": old, "refused": new}
        assert store.get(PATTERNS_MODEL).version == old
        assert store.get(PATTERNS_MODEL).runtime.similar_to(
            store.get(PATTERNS_MODEL).runtime.incidents[0].id, k=1
        )[0]
        status = store.status()[PATTERNS_MODEL]
        assert status["loaded"] and status["version"] == old
        reason = status["refused"]["reason"]
        assert status["refused"]["version"] == new and "corrupt" in reason
        assert "/" not in reason and "Error" not in reason and "npy" not in reason
        assert store.reload()[PATTERNS_MODEL]["status"] == "refused"  # not downloaded again and again
    finally:
        MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
            PATTERNS_MODEL, CHAMPION, old
        )
        mlflow.set_tracking_uri(uri)


def test_registration_refuses_an_upload_that_differs_from_what_was_written(
    small_store: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An artifact cut short on its way to the store is caught before any alias moves to it."""
    import mlflow

    from ml.registry import artifacts
    from training import tracking

    uri, old = str(small_store["uri"]), str(small_store["result"]["version"])
    local = fetch_version(uri, PATTERNS_MODEL, old, tmp_path / "copy")
    real_fetch = artifacts.fetch_version

    def truncating_fetch(*args: object, **kwargs: object) -> Path:
        root = real_fetch(*args, **kwargs)  # type: ignore[arg-type]
        f = root / "index" / "embeddings.npy"
        f.write_bytes(f.read_bytes()[:100])
        return root

    monkeypatch.setattr(tracking, "fetch_version", truncating_fetch)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    candidate_before = tracking.alias_version(PATTERNS_MODEL, tracking.CANDIDATE)
    tracking.configure(small_store["settings"])  # type: ignore[arg-type]
    with tracking.run("fault-tests", small_store["settings"]):  # type: ignore[arg-type]
        with pytest.raises(ArtifactError, match="embeddings.npy"):
            tracking.log_pyfunc(
                model_name=PATTERNS_MODEL, code_file=tracking_code_file(), artifacts={"model_dir": str(local)}
            )
    after = tracking.alias_version(PATTERNS_MODEL, tracking.CANDIDATE)
    assert (after and after.version) == (candidate_before and candidate_before.version)
    assert str(client.get_model_version_by_alias(PATTERNS_MODEL, CHAMPION).version) == old
    mlflow.set_tracking_uri(uri)
    shutil.rmtree(local, ignore_errors=True)


def tracking_code_file() -> Path:
    from ml.registry.runtimes import CODE_DIR

    return CODE_DIR / "patterns.py"


# ------------------------------------------------------------------------------------------ forecaster


@pytest.fixture()
def forecaster_dir(tmp_path: Path) -> Path:
    root = tmp_path / "forecaster"
    root.mkdir()
    (root / "config.json").write_text("{}", encoding="utf-8")
    (root / "bundle.json").write_text('{"format": "not a bundle"}', encoding="utf-8")
    (root / "history.csv").write_text("series,ds,y\nreopens,2025-01-06,3\n", encoding="utf-8")
    write_manifest(root, "forecaster")
    return root


@pytest.mark.parametrize(
    ("file", "content", "named"),
    [
        ("bundle.json", "{not json", "bundle.json: not valid JSON"),
        ("history.csv", "a,b,c\n1,2,3\n", "history.csv: must start with the columns series,ds,y"),
        ("config.json", "[1, 2]", "config.json: must be a JSON object"),
        (None, None, "not a serialised ForecastBundle"),  # valid JSON the installed code cannot read
    ],
)
def test_forecaster_artifact_is_refused_naming_the_file(
    forecaster_dir: Path, file: str | None, content: str | None, named: str
) -> None:
    if file is not None:
        (forecaster_dir / file).write_text(str(content), encoding="utf-8")
        write_manifest(forecaster_dir, "forecaster")
    with pytest.raises(ArtifactError, match=named):
        open_runtime(forecaster_dir, "forecaster")
