"""One failure pattern as shown to people and stored with the model: the one shape of a pattern record."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Pattern"]


@dataclass
class Pattern:
    """One failure pattern, as shown to people and stored with the model."""

    id: int
    name: str
    keywords: list[str]
    size: int
    representative_ids: list[str]
    trend: dict[str, Any]
    first_seen: str | None = None
    last_seen: str | None = None
    keyword_scores: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Pattern:
        return cls(**d)
