"""The CLI's and training jobs' settings, read from the environment (prefix ``RECUR_``) and an optional ``.env``.

The library functions in ``ml`` never read settings themselves: the jobs build :class:`TrainingSettings` and pass
plain values down. ``recur serve`` builds the API's own settings (:mod:`serving.settings`). An empty value means
unset; a bad value is a :class:`SettingsError` naming the setting.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ml.registry.names import default_tracking_uri

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting has a bad value: ``str(exc)`` is one line naming the setting."""


class TrainingSettings(BaseSettings):
    """Data, caches, reports and the MLflow store. Every field can be set as ``RECUR_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="RECUR_", env_file=".env", extra="ignore", env_ignore_empty=True
    )

    # Data
    data_dir: Path = Field(PROJECT_ROOT / "data" / "sample", description="Folder of the default data set.")
    incidents_path: Path | None = Field(None, description="Incidents (JSONL, CSV or a folder of Markdown).")
    experiments_path: Path | None = Field(None, description="Experiment definitions (YAML or JSON).")
    cache_dir: Path = Field(PROJECT_ROOT / ".cache", description="Embedding cache and other reusable work.")
    reports_dir: Path = Field(PROJECT_ROOT / "reports", description="Where `recur report` writes.")

    # MLflow. MLFLOW_TRACKING_URI (MLflow's own variable) wins over the default when set.
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default sqlite:///<project>/mlruns/mlflow.db."
    )
    mlflow_artifact_root: Path = Field(PROJECT_ROOT / "mlruns" / "artifacts")

    @field_validator("incidents_path", "experiments_path", "mlflow_tracking_uri", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @property
    def tracking_uri(self) -> str:
        return (
            self.mlflow_tracking_uri
            or os.environ.get("MLFLOW_TRACKING_URI")
            or default_tracking_uri(PROJECT_ROOT)
        )

    def resolve(self, name: str) -> Path:
        """Path of a default data file: the explicit setting or its file in ``data_dir``."""
        explicit = getattr(self, f"{name}_path")
        if explicit is not None:
            return Path(explicit)
        default = {
            "incidents": "incidents.jsonl",
            "experiments": "experiments.yaml",
        }
        return self.data_dir / default[name]


#: The name the jobs' signatures use.
Settings = TrainingSettings


def load_training_settings(**overrides: Any) -> TrainingSettings:
    """The settings from the environment, ``overrides`` on top; a bad value raises :class:`SettingsError`."""
    try:
        return TrainingSettings(**overrides)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            loc = err.get("loc", ())
            name = f"RECUR_{str(loc[0]).upper()}" if loc else "settings"
            parts.append(f"{name}: {err.get('msg')} (got {str(err.get('input'))[:80]!r})")
        raise SettingsError("; ".join(parts)) from None
    except ValueError as exc:
        raise SettingsError(f"settings: {exc}") from None


@lru_cache(maxsize=1)
def get_settings() -> TrainingSettings:
    return load_training_settings()
