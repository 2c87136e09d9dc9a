"""Fetch the champions in a second process on a first start, while the server imports and loads its own code.

A first start (no local copy yet) spends most of its time in MLflow: about a second to import it, half a second
to open the registry's store and ask it for the champion, then the download. None of that needs the server's
own code, and the server's imports (FastAPI, uvicorn, the runtimes) and its query embedder need none of it; on
one core they add up. So ``recur serve`` starts a child before its own imports (:func:`start`): on Linux a fork
of the server at that point (it has imported only the command line's modules, and no thread runs yet; a fork
skips a new interpreter's start and those imports), elsewhere ``python -m serving.prefetch``. The child looks
up each champion, downloads the version into the local model cache (:mod:`serving.model_cache`), reports what
it did as one JSON object and exits without the interpreter's clean-up. Meanwhile the server imports its code
and loads its query embedder (:meth:`serving.models.ModelStore.prepare`); it then builds the models from those
copies, with every file checked as for any local copy (:meth:`serving.models.ModelStore.open_cached`); a copy
the child fetched from the registry in this start counts as the registry's (it needs no background check).

Nothing depends on the child: if it fails, hangs past the wait or cannot be started, the server loads the
champions itself as before. The request (tracking URI, cache folder, names) never goes on a command line, as
the URI may hold credentials. This module imports only the standard library (and the registry's names) at the
top: the parent must not pay for what the child imports.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

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


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an error's message for a log line, at most `limit` characters: a long one loses its
    middle (usually a path), never its end, which says what was wrong."""
    text = (str(exc).splitlines() or [""])[0]
    if len(text) <= limit:
        return text
    head = limit // 3
    return f"{text[:head]}...{text[-(limit - head - 3) :]}"


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
        log.warning("Serving - registry error for %s: %s", name, first_line(exc))
        raise Unreachable from None
    except Exception as exc:  # connection refused, DNS, TLS ...: the registry did not answer
        log.warning("Serving - registry unreachable for %s: %s: %s", name, type(exc).__name__, exc)
        raise Unreachable from None
    return str(mv.version), mv.run_id


class Child(Protocol):
    """What :class:`Prefetch` needs of its child: :class:`subprocess.Popen`'s ``communicate``, ``kill`` and
    ``returncode``."""

    returncode: int | None

    def communicate(
        self, input: bytes | None = None, timeout: float | None = None
    ) -> tuple[bytes, bytes]: ...

    def kill(self) -> None: ...


class Forked:
    """A forked child (:func:`_fork`) as a :class:`Child`: what it wrote to its pipe is its output when it exits
    with 0, its error otherwise."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid, self.fd = pid, fd
        self.returncode: int | None = None
        self._chunks: list[bytes] = []

    def communicate(self, input: bytes | None = None, timeout: float | None = None) -> tuple[bytes, bytes]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.fd >= 0:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self.fd], [], [], left)[0]:
                raise subprocess.TimeoutExpired("serving.prefetch", timeout or 0.0)
            block = os.read(self.fd, 1 << 16)
            if block:
                self._chunks.append(block)
            else:  # the child exited (or closed its end): reap it
                os.close(self.fd)
                self.fd = -1
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        data = b"".join(self._chunks)
        return (data, b"") if self.returncode == 0 else (b"", data)

    def kill(self) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@dataclass
class Prefetch:
    """A running child (see the module's docstring)."""

    proc: Child
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
    request = {
        "tracking_uri": tracking_uri,
        "cache_dir": str(cache_dir),
        "names": list(names),
        "alias": alias,
    }
    limit_http_retries()
    started = time.perf_counter()
    try:
        proc = _fork(request) if sys.platform == "linux" else _spawn(request)
    except OSError as exc:
        log.warning("Serving - could not start the registry fetch (%s); loading in the server", exc)
        return None
    return Prefetch(proc=proc, names=names, started=started)


def _fork(request: dict[str, Any]) -> Forked:
    """The child as a fork of this process: it fetches, writes its report (or its error) to a pipe and exits
    with :func:`os._exit`, never returning into the caller's code."""
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        raise
    if pid == 0:  # the child
        code = 1
        try:
            gc.disable()  # it only imports and exits (os._exit): collection passes cost MLflow's import a third
            os.close(read_end)
            logging.getLogger().setLevel(logging.ERROR)  # the parent reports; only the unexpected here
            try:
                report = json.dumps(fetch(request)).encode("utf-8")
                code = 0
            except Exception as exc:
                report = f"{type(exc).__name__}: {first_line(exc)}".encode("utf-8", "replace")
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(report)
        finally:
            os._exit(code)  # skip the clean-up of MLflow's ~2,000 modules, and never run the parent's code
    os.close(write_end)
    return Forked(pid, read_end)


def _spawn(request: dict[str, Any]) -> subprocess.Popen[bytes]:
    """The child as ``python -m serving.prefetch``, the request on its standard input."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving.prefetch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None  # one line: the child reads it at once (wait() closes the pipe)
    proc.stdin.write(json.dumps(request).encode("utf-8") + b"\n")
    proc.stdin.flush()
    return proc


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
    gc.disable()  # it only imports and exits (os._exit): collection passes cost MLflow's import a third
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
