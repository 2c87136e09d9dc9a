"""Model artifact folders as data: a manifest, checked files, validated arrays, fetched from the registry.

A runtime is built by the installed code from the files of a version's artifact folder, never by code stored
with the artifact (anyone who can write the registry could otherwise run code in the API). The folder holds a
manifest, ``recur-artifact.json``::

    {"format": "recur.artifact/1", "kind": "patterns" | "forecaster",
     "files": {"<relative path>": {"bytes": n, "sha256": "<hex>"}, ...}}

:func:`check_artifacts` verifies the manifest (format, kind, every listed file present with its size and hash:
a truncated or partly uploaded folder is refused) and then every array the runtime will use (dtype, shape,
shapes that must agree, sparse index bounds and a monotone ``indptr``, finite floats, unique ids), before
anything is built from them. A failed check is an :class:`ArtifactError` naming the file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.errors import InputError
from ml.registry.names import FORECASTER_MODEL, PATTERNS_MODEL

if TYPE_CHECKING:
    from ml.io.schemas import Incident

log = logging.getLogger(__name__)

FORMAT = "recur.artifact/1"
MANIFEST = "recur-artifact.json"
KINDS = ("patterns", "forecaster")
#: The artifact kind each registered model holds.
MODEL_KINDS = {PATTERNS_MODEL: "patterns", FORECASTER_MODEL: "forecaster"}

#: Files every artifact of a kind must list in its manifest.
REQUIRED: dict[str, tuple[str, ...]] = {
    "patterns": (
        "config.json",
        "incidents.jsonl",
        "pattern_model/model.json",
        "pattern_model/centroids.npy",
        "pattern_model/embedding_centroids.npy",
        "pattern_model/mean.npy",
        "pattern_model/components.npy",
        "pattern_model/pattern_ids.npy",
        "pattern_model/thresholds.npy",
        "pattern_model/reduced.npy",
        "pattern_model/labels.npy",
        "pattern_model/incident_ids.json",
        "pattern_model/patterns.json",
        "pattern_model/assignments.json",
        "pattern_model/metrics.json",
        "pattern_model/features/hybrid.json",
        "index/index.json",
        "index/embeddings.npy",
        "index/tf_data.npy",
        "index/tf_indices.npy",
        "index/tf_indptr.npy",
        "index/pattern_ids.npy",
        "index/started_at.npy",
    ),
    "forecaster": ("config.json", "bundle.json", "history.csv"),
}

_MAX_JSON_BYTES = 512 * 1024 * 1024
#: The forecaster's optional explanations of its shifts (each with its ranked causes).
CAUSES_FILE = "causes.json"
CAUSES_FORMAT = "recur.causes/1"
CAUSE_KINDS = ("slice", "pattern", "change", "experiment")


class ArtifactError(InputError):
    """A model artifact folder is incomplete, corrupt or of an unknown format; ``field`` is the file."""

    code = "invalid_artifact"


def _fail(path: Path | str, why: str) -> ArtifactError:
    return ArtifactError(f"model artifact {path}: {why}", field="artifact", value=str(path))


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of the file at `path`, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------ manifest


def write_manifest(root: Path, kind: str) -> Path:
    """Write ``recur-artifact.json`` listing every file under `root` with its size and SHA-256."""
    if kind not in KINDS:
        raise InputError(f"artifact kind must be one of {KINDS}, got {kind!r}", field="kind", value=kind)
    root = Path(root)
    files = {
        p.relative_to(root).as_posix(): {"bytes": p.stat().st_size, "sha256": file_sha256(p)}
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    missing = [f for f in REQUIRED[kind] if f not in files]
    if missing:
        raise _fail(root, f"cannot write the manifest: {', '.join(missing)} missing")
    path = root / MANIFEST
    path.write_text(
        json.dumps({"format": FORMAT, "kind": kind, "files": files}, indent=1, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    return path


def read_manifest(root: Path) -> dict[str, Any]:
    """The manifest of the artifact folder `root`, its format and kind checked."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise _fail(path, "missing: not a Recur model artifact, or one written by an older version")
    manifest = _json(path)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise _fail(path, f"format {got!r}, expected {FORMAT!r}")
    if manifest.get("kind") not in KINDS:
        raise _fail(path, f"kind {manifest.get('kind')!r}, expected one of {', '.join(KINDS)}")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("bytes"), int) and isinstance(v.get("sha256"), str)
        for v in files.values()
    ):
        raise _fail(path, "'files' must map each relative path to its bytes and sha256")
    return manifest


def verify_files(root: Path, kind: str | None = None) -> dict[str, Any]:
    """Check that every file the manifest lists is inside `root`, present, of its size and hash; returns the
    manifest. `kind`, when given, must be the manifest's."""
    root = Path(root)
    manifest = read_manifest(root)
    if kind is not None and manifest["kind"] != kind:
        raise _fail(root / MANIFEST, f"holds a {manifest['kind']} model, expected {kind}")
    listed: dict[str, dict[str, Any]] = manifest["files"]
    for name in REQUIRED[manifest["kind"]]:
        if name not in listed:
            raise _fail(root / MANIFEST, f"does not list {name}")
    base = root.resolve()
    for name, info in listed.items():
        path = (root / name).resolve()
        if not path.is_relative_to(base) or path == base:
            raise _fail(root / MANIFEST, f"lists {name!r}, outside the artifact folder")
        if not path.is_file():
            raise _fail(root / name, "missing")
        size = path.stat().st_size
        if size != info["bytes"]:
            raise _fail(root / name, f"has {size} bytes, the manifest says {info['bytes']} (truncated?)")
        if file_sha256(path) != info["sha256"]:
            raise _fail(root / name, "content differs from the manifest's SHA-256")
    return manifest


# ------------------------------------------------------------------------------------------------ readers


def _json(path: Path) -> Any:
    if not path.is_file():
        raise _fail(path, "missing")
    if path.stat().st_size > _MAX_JSON_BYTES:
        raise _fail(path, "larger than 512 MB")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _fail(path, f"not valid JSON ({str(exc).splitlines()[0][:120]})") from None


def load_array(path: Path, dtype: str, ndim: int, *, finite: bool = False) -> np.ndarray:
    """A ``.npy`` file read without pickles, checked before and after reading: its header must be readable,
    its data as long as the header says (a header claiming a huge shape is refused before any allocation),
    its dtype `dtype`, its number of dimensions `ndim`, and with `finite` every value finite."""
    if not path.is_file():
        raise _fail(path, "missing")
    try:
        with path.open("rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, header_dtype = np.lib.format.read_array_header_1_0(fh)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, header_dtype = np.lib.format.read_array_header_2_0(fh)
            else:  # pragma: no cover - numpy rejects unknown versions in read_magic
                raise ValueError(f"unsupported .npy version {version}")
            offset = fh.tell()
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise _fail(path, f"not a valid .npy file ({str(exc).splitlines()[0][:120]})") from None
    if header_dtype.hasobject:
        raise _fail(path, "holds Python objects (pickles are never loaded)")
    if header_dtype != np.dtype(dtype):
        raise _fail(path, f"dtype {header_dtype}, expected {dtype}")
    if len(shape) != ndim:
        raise _fail(path, f"has {len(shape)} dimensions {tuple(shape)}, expected {ndim}")
    expected = math.prod(shape) * header_dtype.itemsize
    actual = path.stat().st_size - offset
    if actual != expected:
        raise _fail(
            path, f"holds {actual} bytes of data, its header {tuple(shape)} needs {expected} (truncated?)"
        )
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise _fail(path, f"unreadable ({str(exc).splitlines()[0][:120]})") from None
    if finite and arr.size and not np.isfinite(arr).all():
        raise _fail(path, "holds NaN or infinite values")
    checked: np.ndarray = arr
    return checked


def _shape(path: Path, arr: np.ndarray, expected: tuple[int | None, ...]) -> None:
    if len(arr.shape) != len(expected) or any(
        e is not None and a != e for a, e in zip(arr.shape, expected, strict=True)
    ):
        want = tuple("any" if e is None else e for e in expected)
        raise _fail(path, f"has shape {arr.shape}, expected {want}")


def _unique(path: Path, values: Iterable[Any], what: str) -> None:
    seen: set[Any] = set()
    for v in values:
        if v in seen:
            raise _fail(path, f"repeats {what} {v!r}")
        seen.add(v)


def _int(path: Path, meta: Mapping[str, Any], key: str, minimum: int = 0) -> int:
    v = meta.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
        raise _fail(path, f"'{key}' must be an integer >= {minimum}, got {v!r}")
    return v


# ------------------------------------------------------------------------------------------------ patterns


def _lexical_dim(folder: Path, n_dense: int) -> int:
    """Dimensions the hybrid features add to the sentence vectors (0 without a lexical side)."""
    meta = _json(folder / "hybrid.json")
    if not isinstance(meta, dict) or meta.get("n_dense") != n_dense:
        raise _fail(folder / "hybrid.json", f"must be a JSON object with n_dense = {n_dense}")
    weight = meta.get("lexical_weight")
    if not isinstance(weight, int | float) or isinstance(weight, bool) or not 0 <= weight < 1:
        raise _fail(folder / "hybrid.json", "lexical_weight must be a number in [0, 1)")
    if weight == 0:
        return 0
    lexical = _json(folder / "lexical" / "lexical.json")
    vocab = lexical.get("vocabulary") if isinstance(lexical, dict) else None
    if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
        raise _fail(folder / "lexical" / "lexical.json", "must hold the vocabulary as term -> column")
    v = len(vocab)
    if v and (min(vocab.values()) < 0 or max(vocab.values()) >= v or len(set(vocab.values())) != v):
        raise _fail(folder / "lexical" / "lexical.json", "vocabulary columns must be 0..n-1, each once")
    idf = load_array(folder / "lexical" / "idf.npy", "float32", 1, finite=True)
    _shape(folder / "lexical" / "idf.npy", idf, (v,))
    basis = load_array(folder / "lexical" / "components.npy", "float32", 2, finite=True)
    _shape(folder / "lexical" / "components.npy", basis, (None, v))
    return int(basis.shape[0])


def _check_pattern_model(folder: Path) -> tuple[int, list[str]]:
    """Arrays and JSON of a :class:`ml.patterns.PatternModel` folder; returns (n_features, incident ids)."""
    meta = _json(folder / "model.json")
    if not isinstance(meta, dict):
        raise _fail(folder / "model.json", "must be a JSON object")
    n_features = _int(folder / "model.json", meta, "n_features", 1)
    f32 = "float32"
    pattern_ids = load_array(folder / "pattern_ids.npy", "int64", 1)
    n_patterns = pattern_ids.shape[0]
    if n_patterns and pattern_ids.min() < 0:
        raise _fail(folder / "pattern_ids.npy", "holds a negative pattern id")
    _unique(folder / "pattern_ids.npy", pattern_ids.tolist(), "pattern id")
    space = n_features + _lexical_dim(folder / "features", n_features)  # the clustering space
    centroids = load_array(folder / "centroids.npy", f32, 2, finite=True)
    _shape(folder / "centroids.npy", centroids, (n_patterns, space))
    emb_centroids = load_array(folder / "embedding_centroids.npy", f32, 2, finite=True)
    _shape(folder / "embedding_centroids.npy", emb_centroids, (n_patterns, n_features))
    mean = load_array(folder / "mean.npy", f32, 1, finite=True)
    _shape(folder / "mean.npy", mean, (space,))
    components = load_array(folder / "components.npy", f32, 2, finite=True)
    _shape(folder / "components.npy", components, (None, space))
    thresholds = load_array(folder / "thresholds.npy", f32, 1, finite=True)
    _shape(folder / "thresholds.npy", thresholds, (n_patterns,))
    ids = _json(folder / "incident_ids.json")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise _fail(folder / "incident_ids.json", "must be a list of incident ids")
    _unique(folder / "incident_ids.json", ids, "incident id")
    reduced = load_array(folder / "reduced.npy", f32, 2, finite=True)
    _shape(folder / "reduced.npy", reduced, (len(ids), None))
    labels = load_array(folder / "labels.npy", "int64", 1)
    _shape(folder / "labels.npy", labels, (len(ids),))
    patterns = _json(folder / "patterns.json")
    if not isinstance(patterns, list) or not all(isinstance(p, dict) and "id" in p for p in patterns):
        raise _fail(folder / "patterns.json", "must be a list of patterns with their ids")
    if sorted(int(p["id"]) for p in patterns) != sorted(pattern_ids.tolist()):
        raise _fail(folder / "patterns.json", "its pattern ids differ from pattern_ids.npy")
    assignments = _json(folder / "assignments.json")
    if not isinstance(assignments, dict) or not all(isinstance(v, int) for v in assignments.values()):
        raise _fail(folder / "assignments.json", "must map incident ids to pattern ids")
    if not isinstance(_json(folder / "metrics.json"), dict):
        raise _fail(folder / "metrics.json", "must be a JSON object")
    return n_features, ids


def _check_index(folder: Path, dim: int) -> list[str]:
    """Arrays and JSON of a :class:`ml.patterns.SimilarityIndex` folder; returns its incident ids."""
    meta_file = folder / "index.json"
    meta = _json(meta_file)
    if not isinstance(meta, dict):
        raise _fail(meta_file, "must be a JSON object")
    n = _int(meta_file, meta, "n_incidents")
    if _int(meta_file, meta, "dim", 1) != dim:
        raise _fail(meta_file, f"dim {meta['dim']} differs from the pattern model's {dim} features")
    records = meta.get("incidents")
    if not isinstance(records, list) or len(records) != n or not all(isinstance(r, dict) for r in records):
        raise _fail(meta_file, f"'incidents' must list {n} incidents")
    ids = [r.get("id") for r in records]
    if not all(isinstance(i, str) for i in ids):
        raise _fail(meta_file, "every incident needs a string id")
    _unique(meta_file, ids, "incident id")
    vocabulary, display = meta.get("vocabulary"), meta.get("display")
    if not isinstance(vocabulary, list) or not isinstance(display, list) or len(vocabulary) != len(display):
        raise _fail(meta_file, "'vocabulary' and 'display' must be lists of the same length")
    n_terms = len(vocabulary)
    embeddings = load_array(folder / "embeddings.npy", "float32", 2, finite=True)
    _shape(folder / "embeddings.npy", embeddings, (n, dim))
    indptr = load_array(folder / "tf_indptr.npy", "int64", 1)
    _shape(folder / "tf_indptr.npy", indptr, (n + 1,))
    indices = load_array(folder / "tf_indices.npy", "int32", 1)
    data = load_array(folder / "tf_data.npy", "int32", 1)
    _shape(folder / "tf_data.npy", data, indices.shape)
    if indptr[0] != 0 or indptr[-1] != indices.shape[0] or (np.diff(indptr) < 0).any():
        raise _fail(
            folder / "tf_indptr.npy",
            f"must rise monotonically from 0 to the {indices.shape[0]} stored terms",
        )
    if indices.size and (indices.min() < 0 or indices.max() >= n_terms):
        bad = int(indices.min()) if indices.min() < 0 else int(indices.max())
        raise _fail(folder / "tf_indices.npy", f"term index {bad} is outside the vocabulary of {n_terms}")
    if data.size and data.min() <= 0:
        raise _fail(folder / "tf_data.npy", "term counts must be positive")
    pids = load_array(folder / "pattern_ids.npy", "int64", 1)
    _shape(folder / "pattern_ids.npy", pids, (n,))
    if pids.size and pids.min() < -1:
        raise _fail(folder / "pattern_ids.npy", "pattern ids must be -1 (unclustered) or more")
    started = load_array(folder / "started_at.npy", "int64", 1)
    _shape(folder / "started_at.npy", started, (n,))
    views = meta.get("views") or {}
    if not isinstance(views, dict):
        raise _fail(meta_file, "'views' must be a JSON object")
    for name, view in views.items():
        _check_index_view(folder, str(name), view, n, dim)
    return ids


def _check_index_view(folder: Path, name: str, view: Any, n: int, dim: int) -> None:
    """A view of the similarity index (``view-<name>-*.npy``): vectors, which incidents have it, BM25 terms."""
    if name not in ("symptoms", "cause") or not isinstance(view, dict):
        raise _fail(folder / "index.json", f"unknown view {name!r}")
    vocabulary, display = view.get("vocabulary"), view.get("display")
    if not isinstance(vocabulary, list) or not isinstance(display, list) or len(vocabulary) != len(display):
        raise _fail(
            folder / "index.json", f"view {name}: 'vocabulary' and 'display' must be lists of the same length"
        )
    f = {
        part: folder / f"view-{name}-{part}.npy"
        for part in ("embeddings", "present", "tf_indptr", "tf_indices", "tf_data")
    }
    _shape(f["embeddings"], load_array(f["embeddings"], "float32", 2, finite=True), (n, dim))
    _shape(f["present"], load_array(f["present"], "bool", 1), (n,))
    indptr = load_array(f["tf_indptr"], "int64", 1)
    _shape(f["tf_indptr"], indptr, (n + 1,))
    indices = load_array(f["tf_indices"], "int32", 1)
    data = load_array(f["tf_data"], "int32", 1)
    _shape(f["tf_data"], data, indices.shape)
    if indptr[0] != 0 or indptr[-1] != indices.shape[0] or (np.diff(indptr) < 0).any():
        raise _fail(f["tf_indptr"], f"must rise monotonically from 0 to the {indices.shape[0]} stored terms")
    if indices.size and (indices.min() < 0 or indices.max() >= len(vocabulary)):
        raise _fail(f["tf_indices"], f"a term index is outside the vocabulary of {len(vocabulary)}")
    if data.size and data.min() <= 0:
        raise _fail(f["tf_data"], "term counts must be positive")


def check_pattern_artifacts(root: Path) -> list[tuple[Incident, int]]:
    """Validate a pattern artifact folder (manifest, files, every array) before anything is built from it; returns
    its incidents (validated) with their pattern ids, in file order."""
    root = Path(root)
    verify_files(root, "patterns")
    if not isinstance(_json(root / "config.json"), dict):
        raise _fail(root / "config.json", "must be a JSON object")
    dim, _ = _check_pattern_model(root / "pattern_model")
    index_ids = _check_index(root / "index", dim)
    from ml.registry.incident_rows import read_incident_rows

    incidents, ids = read_incident_rows(root / "incidents.jsonl")
    if set(index_ids) - set(ids):
        raise _fail(root / "incidents.jsonl", "does not list every incident of the index")
    return incidents


def check_forecaster_artifacts(root: Path) -> None:
    """Validate a forecaster artifact folder (manifest, files, JSON) before anything is built from it."""
    root = Path(root)
    verify_files(root, "forecaster")
    if not isinstance(_json(root / "config.json"), dict):
        raise _fail(root / "config.json", "must be a JSON object")
    bundle = _json(root / "bundle.json")
    if not isinstance(bundle, dict):
        raise _fail(root / "bundle.json", "must be a JSON object")
    header = (root / "history.csv").read_bytes()[:200].split(b"\n", 1)[0].strip()
    if header.split(b",")[:3] != [b"series", b"ds", b"y"]:
        raise _fail(root / "history.csv", "must start with the columns series,ds,y")
    if CAUSES_FILE in read_manifest(root)["files"]:
        _check_causes(root / CAUSES_FILE)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _date_range(v: Any, date: str) -> bool:
    """None, or two ISO dates (YYYY-MM-DD) with ``first <= date <= last``."""
    if v is None:
        return True
    if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) and len(x) == 10 for x in v)):
        return False
    try:
        first, last, day = (dt.date.fromisoformat(x) for x in (*v, date[:10]))
    except ValueError:
        return False
    return first <= day <= last


def _check_causes(path: Path) -> None:
    """``{"format": "recur.causes/1", "signals": [{id, series, date, direction, magnitude, confidence, verdict,
    causes: [{kind, key, contribution, confidence, evidence, summary}], aliases?: [id], date_range?: [first, last]
    | null}]}`` with unique ids."""
    data = _json(path)
    if (
        not isinstance(data, dict)
        or data.get("format") != CAUSES_FORMAT
        or not isinstance(data.get("signals"), list)
    ):
        raise _fail(path, f"must be an object of format {CAUSES_FORMAT!r} with a 'signals' list")
    for i, s in enumerate(data["signals"]):
        ok = (
            isinstance(s, dict)
            and all(isinstance(s.get(k), str) for k in ("id", "series", "date", "direction", "verdict"))
            and all(_number(s.get(k)) for k in ("magnitude", "confidence"))
            and isinstance(s.get("causes"), list)
            and isinstance(s.get("aliases", []), list)
            and all(isinstance(a, str) for a in s.get("aliases", []))
            and _date_range(s.get("date_range"), str(s.get("date")))
        )
        if not ok:
            raise _fail(
                path,
                f"signal {i + 1} needs string id, series, date, direction, verdict, finite "
                "magnitude and confidence, a causes list, aliases (if any) a list of ids, and date_range (if any) "
                "null or [first, last] ISO dates around the date",
            )
        for c in s["causes"]:
            if not (
                isinstance(c, dict)
                and c.get("kind") in CAUSE_KINDS
                and isinstance(c.get("key"), str)
                and _number(c.get("confidence"))
                and (c.get("contribution") is None or _number(c.get("contribution")))
                and isinstance(c.get("evidence"), dict)
                and isinstance(c.get("summary"), str)
            ):
                raise _fail(
                    path,
                    f"signal {s['id']}: a cause needs kind ({', '.join(CAUSE_KINDS)}), key, "
                    "finite confidence and contribution (or null), evidence object and summary",
                )
    # an alias leads to one shift only: never another's id or alias
    _unique(
        path, (i for s in data["signals"] for i in [s["id"], *s.get("aliases", [])]), "signal id or alias"
    )


def check_artifacts(root: Path, kind: str | None = None) -> str:
    """Validate the artifact folder `root` of either kind; returns its kind."""
    manifest = read_manifest(Path(root))
    if kind is not None and manifest["kind"] != kind:
        raise _fail(Path(root) / MANIFEST, f"holds a {manifest['kind']} model, expected {kind}")
    if manifest["kind"] == "patterns":
        check_pattern_artifacts(root)
    else:
        check_forecaster_artifacts(root)
    return str(manifest["kind"])


# ------------------------------------------------------------------------------------------------ registry


def find_artifact_root(folder: Path) -> Path:
    """The one folder under `folder` that holds a manifest (a downloaded model version)."""
    found = sorted(p.parent for p in Path(folder).rglob(MANIFEST))
    if len(found) != 1:
        why = "no Recur data artifact" if not found else f"{len(found)} artifact manifests"
        raise _fail(folder, f"holds {why} ({MANIFEST})")
    return found[0]


def fetch_version(tracking_uri: str, name: str, version: str, dest: Path | None = None) -> Path:
    """Download the files of registered model `name` version `version` (files only: nothing in them is
    imported or run) and return the folder that holds its manifest. The caller removes ``dest`` (a fresh
    temporary folder when not given) when done."""
    import mlflow.artifacts
    from mlflow.tracking import MlflowClient

    dest = Path(tempfile.mkdtemp(prefix="recur-model-")) if dest is None else Path(dest)
    try:
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        location = client.get_model_version_download_uri(name, str(version))
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=str(dest), tracking_uri=tracking_uri
        )
        return find_artifact_root(Path(local))
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
