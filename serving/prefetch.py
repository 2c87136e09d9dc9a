"""Fetch the champions that have no local copy in a second process, while the server imports its own code.

A first start (no local copy yet) spends most of its time in MLflow: about a second to import it, half a second
to open the registry's store and ask it for the champion, then the download. None of that needs the server's
own code, and the server's imports (FastAPI, uvicorn, the runtimes) need none of it; on one core they add up.
So ``recur serve`` starts this module as a child process before its own imports (:func:`start`): the child looks
up each missing champion, downloads the version into the local model cache (:mod:`serving.model_cache`) and
prints what it did as one JSON object. The server then builds the models from those copies, with every file
checked as for any local copy (:meth:`serving.models.ModelStore.open_cached`); a copy the child fetched from the
registry in this start counts as the registry's (it needs no background check).

Nothing depends on the child: if it fails, hangs past the wait or cannot be started, the server loads the
champions itself as before. The request (tracking URI, cache folder, names) goes through the child's standard
input, never its command line, as the URI may hold credentials. This module imports only the standard library
(and the registry's names) at the top: the parent must not pay for what the child imports.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.registry.names import CHAMPION, MODEL_NAMES

if TYPE_CHECKING:
    from serving.settings import ServingSettings

log = logging.getLogger(__name__)

#: How long the server waits for the child before it loads the champions itself.
WAIT_S = 300.0
#: MLflow error codes that mean "no such model or alias" rather than "the registry did not answer".
ABSENT_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"})


class Unreachable(Exception):
    """The registry did not answer."""


def limit_http_retries() -> None:
    """A registry that does not answer should cost seconds, not MLflow's default minutes of retries: the API
    starts not-ready and the poller tries again."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def champion(tracking_uri: str, name: str, alias: str) -> tuple[str, str | None] | None:
    """(version, run id) behind `alias` of model `name`; None when there is none; :class:`Unreachable` when the
    registry fails (logged in one line)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        mv = client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ABSENT_CODES:
            return None
        log.warning("Serving - registry error for %s: %s", name, str(exc).splitlines()[0][:300])
        raise Unreachable from None
    except Exception as exc:  # connection refused, DNS, TLS ...: the registry did not answer
        log.warning("Serving - registry unreachable for %s: %s: %s", name, type(exc).__name__, exc)
        raise Unreachable from None
    return str(mv.version), mv.run_id


@dataclass
class Prefetch:
    """A running child (see the module's docstring)."""

    proc: subprocess.Popen[bytes]
    names: tuple[str, ...]
    started: float

    def wait(self, timeout: float = WAIT_S) -> dict[str, dict[str, Any]]:
        """What the child did per model: ``{"status": "fetched", "version", "run_id", "manifest_sha256"}`` or
        ``{"status": "missing"}`` (no champion); models it could not settle are left out. Never raises: a
        failed, killed or hung child (killed after `timeout`) gives ``{}``, logged in one line."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            log.warning(
                "Serving - the registry fetch took over %.0fs: stopped; loading in the server", timeout
            )
            return {}
        last = (err.decode("utf-8", "replace").strip().splitlines() or [""])[-1][:300]
        if self.proc.returncode != 0:
            log.warning("Serving - the registry fetch failed (exit %s): %s", self.proc.returncode, last)
            return {}
        try:
            report = json.loads(out.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            log.warning("Serving - the registry fetch printed no result: %s", last)
            return {}
        results = {
            name: r
            for name, r in (report.get("models") or {}).items()
            if name in self.names and isinstance(r, dict) and r.get("status") in ("fetched", "missing")
        }
        for line in report.get("log") or []:
            log.warning("Serving - %s", str(line)[:300])
        log.info(
            "Serving - the registry fetch settled %d of %d models in %.1fs",
            len(results),
            len(self.names),
            time.perf_counter() - self.started,
        )
        return results


def start(tracking_uri: str, cache_dir: Path | None, names: tuple[str, ...], alias: str) -> Prefetch | None:
    """Start the child for `names` on a first start: when no model has a local copy under `cache_dir`. None
    otherwise (no cache; a restart, which is ready from its copies at once while the poller looks for the rest)
    or when the child cannot be started."""
    if cache_dir is None:
        return None
    from serving.model_cache import ModelCache  # light: the standard library and the manifest's hash

    cache = ModelCache(cache_dir, tracking_uri)
    if any(cache.has(n) for n in names):
        return None
    missing = tuple(names)
    request = {
        "tracking_uri": tracking_uri,
        "cache_dir": str(cache_dir),
        "names": list(missing),
        "alias": alias,
    }
    limit_http_retries()
    started = time.perf_counter()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "serving.prefetch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdin is not None  # one line: the child reads it at once (wait() closes the pipe)
        proc.stdin.write(json.dumps(request).encode("utf-8") + b"\n")
        proc.stdin.flush()
    except OSError as exc:
        log.warning("Serving - could not start the registry fetch (%s); loading in the server", exc)
        return None
    return Prefetch(proc=proc, names=missing, started=started)


def start_for(settings: ServingSettings) -> Prefetch | None:
    """:func:`start` for every model the API serves, by the champion alias, as `settings` say."""
    return start(settings.tracking_uri, settings.model_cache_path, MODEL_NAMES, CHAMPION)


def fetch(request: dict[str, Any]) -> dict[str, Any]:
    """The child's work: each champion of ``request["names"]`` downloaded into the local cache. A model whose
    registry lookup or download fails is left out (the server tries it itself), with one line in ``log``."""
    import shutil

    from ml.registry.artifacts import fetch_version
    from serving.model_cache import ModelCache

    uri, alias = str(request["tracking_uri"]), str(request["alias"])
    cache = ModelCache(Path(request["cache_dir"]), uri)
    models: dict[str, Any] = {}
    notes: list[str] = []
    for name in request["names"]:
        try:
            champ = champion(uri, name, alias)
        except Unreachable:
            notes.append(f"registry unreachable for {name}")
            continue
        if champ is None:
            models[name] = {"status": "missing"}
            continue
        version, run_id = champ
        staging = cache.staging(name)
        try:
            root = fetch_version(uri, name, version, dest=staging)
            entry = cache.keep(name, version, run_id, root, staging)
        except Exception as exc:  # the server tries again itself and reports what it finds
            notes.append(f"could not fetch {name} v{version}: {type(exc).__name__}")
            continue
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        models[name] = {
            "status": "fetched",
            "version": entry.version,
            "run_id": entry.run_id,
            "manifest_sha256": entry.manifest_sha256,
        }
    return {"models": models, "log": notes}


def main() -> int:
    logging.basicConfig(
        level=logging.ERROR, stream=sys.stderr
    )  # the parent reports; only the unexpected here
    request = json.loads(sys.stdin.readline())
    limit_http_retries()
    sys.stdout.write(json.dumps(fetch(request)))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)  # skip the interpreter's clean-up of MLflow's ~2,000 modules: the parent is waiting
