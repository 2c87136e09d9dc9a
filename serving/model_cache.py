"""The local copy of the champions the API served last, so that a restart is ready without the registry.

After the store loads a version from the registry, the version's validated artifact folder is moved here (on a
first start, :mod:`serving.prefetch` downloads the champions here, and the store validates them as it builds
them). At start-up the store builds each model from its local copy (no MLflow import, no registry call), is
ready at once, and then checks the registry in the background. Layout, one folder per registry (a hash of its
tracking URI, so two registries never share an entry) and per model::

    <cache dir>/<registry hash>/<model name>/
        current.json        {"format": "recur.model-cache/1", "version": "3", "dir": "v3-1a2b3c4d"}
        v3-1a2b3c4d/
            entry.json      {"format", "name", "version", "run_id", "registry", "manifest_sha256",
                             "manifest_path", "cached_at"}
            model/          the artifact folder: recur-artifact.json and the files it lists
        .tmp-*/             a write in progress (never read; removed by the next write)

A write never leaves a half entry under a final name: the folder is completed under a ``.tmp-`` name, renamed to
a fresh ``v<version>-<random>`` name, and only then does ``current.json`` (replaced atomically) point at it; older
entries are removed afterwards (a link is removed, never what it points at). A read checks the names, that no
folder or file on the way is a link, the manifest's place and its SHA-256 recorded at write time; the store then
builds the runtime with :func:`ml.registry.runtimes.open_runtime`, which checks every file against the
manifest and every array. Anyone who can write this folder can change what is served until the registry answers
(the background check compares the manifest with the registry's): keep it writable by the service user only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.registry.artifacts import MANIFEST, file_sha256

log = logging.getLogger(__name__)

FORMAT = "recur.model-cache/1"
CURRENT = "current.json"
ENTRY = "entry.json"
MODEL_DIR = "model"
_TMP = ".tmp-"
_STALE_TMP_S = 3600.0  # a .tmp- folder this old belongs to a process that died
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ENTRY_DIR = re.compile(r"v[A-Za-z0-9._]{1,64}-[0-9a-f]{8}")
#: A version or run id (MLflow: an integer, hex): it reaches logs and /readyz.
_VERSION = re.compile(r"[A-Za-z0-9._-]{1,64}")


class CacheError(Exception):
    """A local copy that must not be served (missing, half written, tampered): ``str(exc)`` is one line."""


def registry_key(tracking_uri: str) -> str:
    """The folder name of a registry's entries (its URI is never written: it may hold credentials)."""
    return hashlib.sha256(tracking_uri.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class CachedEntry:
    """A local copy of one version: its artifact folder ``root`` and what the registry said when it was
    cached (``manifest_path``: where the manifest sits under the version's download URI, for the check)."""

    name: str
    version: str
    run_id: str | None
    root: Path
    manifest_sha256: str
    manifest_path: str


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=_TMP, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _manifest_place(where: object) -> str | None:
    """`where` if it is a relative path of plain names (no ``..``, no scheme, no leading ``/``), else None: it is
    joined to the version's download URI for the registry check, so a changed one must not point elsewhere."""
    if where == "":
        return ""
    if not isinstance(where, str) or not all(_NAME.fullmatch(part) for part in where.split("/")):
        return None
    return where


def _not_linked(*paths: Path) -> None:
    """A copy is read only from real folders and files under the cache: a link could point it anywhere."""
    for path in paths:
        if path.is_symlink():
            raise CacheError(f"{path.name} is a link")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CacheError(f"{path.name} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CacheError(f"{path.name} is unreadable ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CacheError(f"{path.name} is not a {FORMAT} record")
    return data


class ModelCache:
    """The local copies of one registry's champions under ``root`` (see the module's docstring)."""

    def __init__(self, root: Path, tracking_uri: str) -> None:
        self.root = Path(root)
        self.registry = registry_key(tracking_uri)
        self.base = self.root / self.registry

    def _model_dir(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise CacheError(f"model name {name!r} cannot name a folder")
        return self.base / name

    def has(self, name: str) -> bool:
        return (self._model_dir(name) / CURRENT).is_file()

    def staging(self, name: str) -> Path:
        """A fresh folder on the cache's file system to download a version into (so that keeping it is a
        rename); the caller removes it when done."""
        folder = self._model_dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=_TMP, dir=folder))

    def current(self, name: str) -> CachedEntry:
        """The local copy of `name` to serve; :class:`CacheError` if there is none or it must not be served.
        Only names and the manifest's hash are checked here: :func:`open_runtime` checks the files."""
        folder = self._model_dir(name)
        _not_linked(self.base, folder, folder / CURRENT)
        pointer = _read_json(folder / CURRENT)
        version, sub = pointer.get("version"), pointer.get("dir")
        if not (isinstance(version, str) and _VERSION.fullmatch(version)):
            raise CacheError(f"{CURRENT} does not name a version")
        if not isinstance(sub, str) or not _ENTRY_DIR.fullmatch(sub):
            raise CacheError(f"{CURRENT} does not name a version and its folder")
        entry_dir = folder / sub
        _not_linked(entry_dir, entry_dir / ENTRY)
        entry = _read_json(entry_dir / ENTRY)
        expected = {"name": name, "version": version, "registry": self.registry}
        for key, value in expected.items():
            if entry.get(key) != value:
                raise CacheError(f"{ENTRY} says {key} {entry.get(key)!r}, expected {value!r}")
        where = _manifest_place(entry.get("manifest_path") or "")
        if where is None:
            raise CacheError(f"{ENTRY} says manifest_path {entry['manifest_path']!r}, not a relative path")
        root = entry_dir / MODEL_DIR
        manifest = root / MANIFEST
        _not_linked(root, manifest)
        if not manifest.is_file():
            raise CacheError(f"v{version}: the artifact's manifest is missing")
        if file_sha256(manifest) != entry.get("manifest_sha256"):
            raise CacheError(f"v{version}: the artifact's manifest differs from the one cached")
        run_id = entry.get("run_id")
        return CachedEntry(
            name=name,
            version=version,
            run_id=run_id if isinstance(run_id, str) and _VERSION.fullmatch(run_id) else None,  # to /readyz
            root=root,
            manifest_sha256=str(entry["manifest_sha256"]),
            manifest_path=where,
        )

    def save(
        self, name: str, version: str, run_id: str | None, artifact_root: Path, manifest_path: str
    ) -> CachedEntry:
        """Keep the validated artifact folder `artifact_root` (moved, not copied: it must be on the cache's file
        system, see :meth:`staging`) as the current copy of `name`, and remove older ones."""
        folder = self._model_dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        manifest_path = _manifest_place(manifest_path) or ""  # unusual: the check then fetches the version
        building = Path(tempfile.mkdtemp(prefix=_TMP, dir=folder))
        try:
            os.rename(artifact_root, building / MODEL_DIR)
            digest = file_sha256(building / MODEL_DIR / MANIFEST)
            record = {
                "format": FORMAT,
                "name": name,
                "version": version,
                "run_id": run_id,
                "registry": self.registry,
                "manifest_sha256": digest,
                "manifest_path": manifest_path,
                "cached_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            _write_json_atomic(building / ENTRY, record)
            safe = re.sub(r"[^A-Za-z0-9._]", "_", version)[:64] or "_"
            final = folder / f"v{safe}-{secrets.token_hex(4)}"
            os.rename(building, final)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        _write_json_atomic(folder / CURRENT, {"format": FORMAT, "version": version, "dir": final.name})
        self._prune(folder, keep=final.name)
        return CachedEntry(name, version, run_id, final / MODEL_DIR, digest, manifest_path)

    def keep(self, name: str, version: str, run_id: str | None, root: Path, staging: Path) -> CachedEntry:
        """:meth:`save` for a version downloaded under `staging` (from :meth:`staging`) whose manifest folder is
        `root`: where the manifest sits under the version's download URI is read off the path."""
        where = "/".join(root.relative_to(staging).parts[1:])
        return self.save(name, version, run_id, root, where)

    def discard(self, name: str) -> None:
        """Forget the current copy of `name` (a refused one): the next start-up goes to the registry. A failure
        to remove it is logged: the copy is refused again next time."""
        folder = self._model_dir(name)
        if self.base.is_symlink() or folder.is_symlink():  # nothing is removed through a link
            log.warning("Serving - the local copy of %s is under a link: left as it is (refused again)", name)
            return
        try:
            (folder / CURRENT).unlink(missing_ok=True)
            self._prune(folder, keep=None)
        except OSError as exc:
            log.warning("Serving - could not remove the local copy of %s: %s", name, exc)

    @staticmethod
    def _prune(folder: Path, keep: str | None) -> None:
        now = time.time()
        for child in folder.iterdir():
            if child.name in (keep, CURRENT):
                continue
            if child.name.startswith(_TMP):  # another process may be writing it: only old ones go
                try:
                    if now - child.stat().st_mtime < _STALE_TMP_S:
                        continue
                except OSError:
                    continue
            ours = child.name.startswith(_TMP) or _ENTRY_DIR.fullmatch(child.name)
            if ours and child.is_symlink():  # the link goes, never what it points at
                child.unlink(missing_ok=True)
            elif child.is_dir() and ours:
                shutil.rmtree(child, ignore_errors=True)
            elif child.name.startswith(_TMP):
                child.unlink(missing_ok=True)
