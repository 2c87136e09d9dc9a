"""The API's settings, read from the environment (prefix ``RECUR_``) and an optional ``.env``, validated once at
start-up.

An empty value means unset. Anything else wrong (a key file that is missing, a folder, not JSON, not an object,
empty, or with a bad scope; a short key; a port out of range) is a :class:`SettingsError`: one line naming the
setting and, for the key file, the file. ``recur serve`` and ``uvicorn --factory serving.app:app_factory`` turn it
into that line on stderr and exit code 2.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ml.registry.names import default_tracking_uri

PROJECT_ROOT = Path(__file__).resolve().parent.parent

Scope = Literal["read", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "admin")
MIN_KEY_CHARS = 16
_SHA256 = re.compile(r"[0-9a-f]{64}")


class SettingsError(ValueError):
    """A setting has a bad value: ``str(exc)`` is one line naming the setting (and the file, if any)."""


def _env_name(field: str) -> str:
    return f"RECUR_{field.upper()}"


class ServingSettings(BaseSettings):
    """What the API needs. Every field can be set as ``RECUR_<FIELD>`` (e.g. ``RECUR_API_PORT=9000``)."""

    model_config = SettingsConfigDict(
        env_prefix="RECUR_", env_file=".env", extra="ignore", env_ignore_empty=True
    )

    # MLflow. MLFLOW_TRACKING_URI (MLflow's own variable) wins over the default when set.
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default sqlite:///<project>/mlruns/mlflow.db."
    )

    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description='API keys as "key:scope" (scope read|admin), JSON list or comma-separated.',
    )
    api_keys_file: Path | None = Field(
        None, description='JSON file {"<sha256 of key>": "read"|"admin"} of hashed API keys.'
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the API answers to besides loopback ones (comma-separated), e.g. recur.internal.",
    )
    reload_interval_s: float = Field(
        0.0, ge=0, description="Poll MLflow for a new champion every N s (0: off)."
    )
    max_body_bytes: int = Field(256_000, ge=1024)
    max_text_chars: int = Field(20_000, ge=100)
    query_cache_size: int = Field(
        2048, ge=0, description="Prepared query texts, and finished answers, kept (LRU each); 0: off."
    )
    heatmap_cache_size: int = Field(64, ge=0, description="Heat maps kept (LRU, tables and pages); 0: off.")
    query_runtime: Literal["onnx-int8", "onnx", "torch", "auto"] = Field(
        "onnx-int8",
        description="Runtime that embeds pasted texts: onnx-int8 (about 40% less CPU per new query; within "
        "cosine 0.993 and +0.005 P@5/MRR of fp32), onnx (fp32), torch, or auto; a missing export falls back to auto.",
    )
    model_cache: bool = Field(
        True, description="Keep a local copy of each champion loaded and start from it (false: off)."
    )
    model_cache_dir: Path | None = Field(
        None,
        description="Folder of the local copies; default serving-cache/ beside a SQLite tracking store, "
        "else <RECUR_CACHE_DIR>/serving-cache.",
    )
    cache_dir: Path | None = Field(
        None, description="Reusable work (as for training); default <project>/.cache."
    )

    _key_scopes: dict[str, Scope] = PrivateAttr(default_factory=dict)

    @field_validator("mlflow_tracking_uri", "api_keys_file", "model_cache_dir", "cache_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("api_keys", "allowed_hosts", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        if isinstance(v, str):
            v = v.strip()
            if v.startswith("["):
                return json.loads(v)
            return [k.strip() for k in v.split(",") if k.strip()]
        return v

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, v: list[str]) -> list[str]:
        out = []
        for host in v:
            host = host.strip().lower().rstrip(".")
            if not host or any(c in host for c in "/:@ *"):
                raise ValueError(f"{host!r} is not a host name (no port, scheme or wildcard)")
            out.append(host)
        return out

    @model_validator(mode="after")
    def _load_keys(self) -> ServingSettings:
        self._key_scopes = {**_inline_keys(self.api_keys), **_file_keys(self.api_keys_file)}
        return self

    @model_validator(mode="after")
    def _check_model_cache(self) -> ServingSettings:
        folder = self.model_cache_path
        if folder is not None:
            _writable_folder(folder, "RECUR_MODEL_CACHE_DIR" + ("" if self.model_cache_dir else " (default)"))
        return self

    @property
    def tracking_uri(self) -> str:
        return (
            self.mlflow_tracking_uri
            or os.environ.get("MLFLOW_TRACKING_URI")
            or default_tracking_uri(PROJECT_ROOT)
        )

    @property
    def model_cache_path(self) -> Path | None:
        """Where the local copies of the champions live; None when ``model_cache`` is off."""
        if not self.model_cache:
            return None
        if self.model_cache_dir is not None:
            return self.model_cache_dir
        uri = self.tracking_uri
        if uri.startswith("sqlite:///"):  # beside the SQLite store
            db = uri.removeprefix("sqlite:///").split("?", 1)[0]
            if db and db != ":memory:":
                return Path(db).parent / "serving-cache"
        return (self.cache_dir or PROJECT_ROOT / ".cache") / "serving-cache"

    def key_scopes(self) -> dict[str, Scope]:
        """sha256(key) -> scope, from ``api_keys`` and ``api_keys_file`` (read and checked at start-up)."""
        return dict(self._key_scopes)


def _inline_keys(keys: list[SecretStr]) -> dict[str, Scope]:
    out: dict[str, Scope] = {}
    for i, secret in enumerate(keys, 1):
        key, _, scope = secret.get_secret_value().partition(":")
        scope = scope or "read"
        if scope not in SCOPES:
            raise SettingsError(f"RECUR_API_KEYS: entry {i}: scope {scope!r} is not read or admin")
        if len(key) < MIN_KEY_CHARS:
            raise SettingsError(
                f"RECUR_API_KEYS: entry {i}: a key must be at least {MIN_KEY_CHARS} characters long"
            )
        out[hashlib.sha256(key.encode()).hexdigest()] = scope  # type: ignore[assignment]
    return out


def _file_keys(path: Path | None) -> dict[str, Scope]:
    if path is None:
        return {}
    where = f"RECUR_API_KEYS_FILE ({path})"
    if not path.exists():
        raise SettingsError(f"{where}: no such file")
    if not path.is_file():
        raise SettingsError(f"{where}: not a file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise SettingsError(f"{where}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except OSError as exc:
        raise SettingsError(f"{where}: cannot read it: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise SettingsError(
            f'{where}: expected a JSON object {{"<sha256 of key>": "read"|"admin"}}, got a {type(data).__name__}'
        )
    if not data:
        raise SettingsError(
            f"{where}: the file has no keys; an empty key file would leave the API keyless (unset the setting "
            "to run keyless on loopback)"
        )
    out: dict[str, Scope] = {}
    for digest, scope in data.items():
        digest = str(digest).strip().lower()
        if not _SHA256.fullmatch(digest):
            raise SettingsError(
                f"{where}: {digest[:12]!r}... is not a SHA-256 hex digest (64 hex characters)"
            )
        if scope not in SCOPES:
            raise SettingsError(f"{where}: key {digest[:12]}...: scope {scope!r} is not read or admin")
        out[digest] = scope
    return out


def _writable_folder(path: Path, setting: str) -> None:
    """Create `path` if needed; a file there, or a folder that cannot be created or written, is a
    :class:`SettingsError` naming the setting."""
    where = f"{setting} ({path})"
    if path.exists() and not path.is_dir():
        raise SettingsError(f"{where}: not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(
            f"{where}: cannot create it: {exc.strerror}; set it to a writable folder, or RECUR_MODEL_CACHE=false"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise SettingsError(f"{where}: not writable; set it to a writable folder, or RECUR_MODEL_CACHE=false")


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = err.get("loc", ())
        name = _env_name(str(loc[0])) if loc else "settings"
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        value = err.get("input")
        shown = "" if loc and loc[0] == "api_keys" else f" (got {str(value)[:80]!r})"
        parts.append(f"{name}: {msg}{shown}")
    return "; ".join(parts)


def load_serving_settings(**overrides: Any) -> ServingSettings:
    """The serving settings from the environment, with ``overrides`` (field names) on top; a bad value raises
    :class:`SettingsError` with one line naming the setting."""
    try:
        return ServingSettings(**overrides)
    except SettingsError:
        raise
    except ValidationError as exc:
        cause = next(
            (
                e["ctx"]["error"]
                for e in exc.errors()
                if isinstance(e.get("ctx", {}).get("error"), SettingsError)
            ),
            None,
        )
        if cause is not None:
            raise SettingsError(str(cause)) from None
        raise SettingsError(_one_line(exc)) from None
    except (
        json.JSONDecodeError,
        ValueError,
    ) as exc:  # a malformed JSON list in RECUR_API_KEYS / ALLOWED_HOSTS
        raise SettingsError(f"settings: {exc}") from None
