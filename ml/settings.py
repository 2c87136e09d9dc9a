"""Recur's settings: one typed place, read from the environment (prefix ``RECUR_``) and an optional ``.env``.

The library functions in ``ml`` never read settings themselves: ``training`` (the CLI and jobs) and ``serving``
(the API) build a :class:`Settings` and pass plain values down.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

Scope = Literal["read", "admin"]


class Settings(BaseSettings):
    """All settings. Every field can be set as ``RECUR_<FIELD>`` (e.g. ``RECUR_API_PORT=9000``)."""

    model_config = SettingsConfigDict(env_prefix="RECUR_", env_file=".env", extra="ignore")

    # Data
    data_dir: Path = Field(PROJECT_ROOT / "data" / "sample", description="Folder of the default data set.")
    incidents_path: Path | None = Field(None, description="Incidents (JSONL, CSV or a folder of Markdown).")
    indicators_path: Path | None = Field(None, description="Indicator observations (CSV or Parquet).")
    experiments_path: Path | None = Field(None, description="Experiment definitions (YAML or JSON).")
    cache_dir: Path = Field(PROJECT_ROOT / ".cache", description="Embedding cache and other reusable work.")
    reports_dir: Path = Field(PROJECT_ROOT / "reports", description="Where `recur report` writes.")

    # MLflow. MLFLOW_TRACKING_URI (MLflow's own variable) wins over the default when set.
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default sqlite:///<project>/mlruns/mlflow.db."
    )
    mlflow_artifact_root: Path = Field(PROJECT_ROOT / "mlruns" / "artifacts")

    # API
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description='API keys as "key:scope" (scope read|admin), JSON list or comma-separated.',
    )
    api_keys_file: Path | None = Field(
        None, description='JSON file {"<sha256 of key>": "read"|"admin"} of hashed API keys.'
    )
    reload_interval_s: float = Field(
        0.0, ge=0, description="Poll MLflow for a new champion every N s (0: off)."
    )
    max_body_bytes: int = Field(256_000, ge=1024)
    max_text_chars: int = Field(20_000, ge=100)
    query_cache_size: int = Field(2048, ge=0)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, v: object) -> object:
        if isinstance(v, str):
            v = v.strip()
            if v.startswith("["):
                return json.loads(v)
            return [k.strip() for k in v.split(",") if k.strip()]
        return v

    @property
    def tracking_uri(self) -> str:
        import os

        return (
            self.mlflow_tracking_uri
            or os.environ.get("MLFLOW_TRACKING_URI")
            or f"sqlite:///{PROJECT_ROOT / 'mlruns' / 'mlflow.db'}"
        )

    def key_scopes(self) -> dict[str, Scope]:
        """sha256(key) -> scope, from ``api_keys`` and ``api_keys_file``."""
        out: dict[str, Scope] = {}
        for secret in self.api_keys:
            raw = secret.get_secret_value()
            key, _, scope = raw.partition(":")
            scope = scope or "read"
            if scope not in ("read", "admin"):
                raise ValueError(f"RECUR_API_KEYS: scope {scope!r} is not read or admin")
            if len(key) < 16:
                raise ValueError("RECUR_API_KEYS: a key must be at least 16 characters long")
            out[hashlib.sha256(key.encode()).hexdigest()] = scope  # type: ignore[assignment]
        if self.api_keys_file is not None:
            data = json.loads(self.api_keys_file.read_text(encoding="utf-8"))
            for digest, scope in data.items():
                if scope not in ("read", "admin"):
                    raise ValueError(f"{self.api_keys_file}: scope {scope!r} is not read or admin")
                out[str(digest).lower()] = scope
        return out

    def resolve(self, name: str) -> Path:
        """Path of a default data file: the explicit setting or its file in ``data_dir``."""
        explicit = getattr(self, f"{name}_path")
        if explicit is not None:
            return Path(explicit)
        default = {
            "incidents": "incidents.jsonl",
            "indicators": "indicators.csv",
            "experiments": "experiments.yaml",
        }
        return self.data_dir / default[name]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
