"""Views of a postmortem: the text a stage looks at.

A failure pattern is *how* things failed. Real postmortems share their symptom vocabulary across causes
("elevated error rates", "customers", "rollout", "latency"); the cause is told in the root-cause section. The
**root-cause view** is therefore the root cause and the contributing factors, falling back to the title and
summary when a postmortem has neither (short or unfinished write-ups). The **symptom view** (title, summary,
impact) is what a responder pastes during an incident, and is what similar-incident search compares.

`RootCauseView` has the interface of :class:`ml.text.documents.DocumentBuilder` (``fit``, ``build_many``,
``build_text``, ``entities_``), so the pattern model can take either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ml.errors import InputError
from ml.io.schemas import Incident
from ml.text.documents import DocumentBuilder

__all__ = ["CAUSE_FIELDS", "FALLBACK_FIELDS", "SYMPTOM_FIELDS", "RootCauseView"]

CAUSE_FIELDS: tuple[str, ...] = ("root_cause", "contributing_factors")
FALLBACK_FIELDS: tuple[str, ...] = ("title", "summary")
SYMPTOM_FIELDS: tuple[str, ...] = ("title", "summary", "impact")


class RootCauseView:
    """The root cause and contributing factors of each incident; title and summary when both are empty.

    Parameters
    ----------
    cause_fields, fallback_fields:
        Incident fields of the view and of its fallback.
    strip_html, mask_entities:
        As :class:`DocumentBuilder` (service names masked by default: a pattern spans services).
    """

    def __init__(
        self,
        cause_fields: Sequence[str] = CAUSE_FIELDS,
        fallback_fields: Sequence[str] = FALLBACK_FIELDS,
        strip_html: bool = True,
        mask_entities: bool = True,
    ) -> None:
        self.cause_fields = cause_fields
        self.fallback_fields = fallback_fields
        self.strip_html = strip_html
        self.mask_entities = mask_entities

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field the view may read (the cause fields first)."""
        return (*self.cause_fields, *(f for f in self.fallback_fields if f not in self.cause_fields))

    def get_params(self) -> dict[str, Any]:
        return {
            "cause_fields": list(self.cause_fields),
            "fallback_fields": list(self.fallback_fields),
            "strip_html": self.strip_html,
            "mask_entities": self.mask_entities,
        }

    def _builders(self) -> tuple[DocumentBuilder, DocumentBuilder]:
        entities = getattr(self, "entities_", [])
        kw = {"strip_html": self.strip_html, "mask_entities": self.mask_entities}
        cause = DocumentBuilder(fields=tuple(self.cause_fields), **kw).set_entities(entities)
        fallback = DocumentBuilder(fields=tuple(self.fallback_fields), **kw).set_entities(entities)
        return cause, fallback

    def fit(self, incidents: Iterable[Incident], y: None = None) -> RootCauseView:
        """Learn the service names to mask, as :meth:`DocumentBuilder.fit` does."""
        for name in ("cause_fields", "fallback_fields"):
            value = getattr(self, name)
            if isinstance(value, str) or not value or not all(isinstance(f, str) and f for f in value):
                raise InputError(
                    f"{name} must be a non-empty list of incident field names, got {value!r}",
                    field=name,
                    value=value,
                )
        learned = DocumentBuilder(fields=tuple(self.cause_fields), mask_entities=True).fit(incidents)
        return self.set_entities(learned.entities_)

    def set_entities(self, names: Iterable[str]) -> RootCauseView:
        self.entities_ = sorted({str(n) for n in names if n})
        self._cause, self._fallback = self._builders()
        return self

    def has_cause(self, incident: Incident) -> bool:
        """Whether the incident tells its cause (a non-blank cause field)."""
        for name in self.cause_fields:
            value = getattr(incident, name, None)
            if isinstance(value, str) and value.strip():
                return True
            if isinstance(value, list) and any(str(v).strip() for v in value):
                return True
        return False

    def build(self, incident: Incident) -> str:
        if not hasattr(self, "_cause"):
            self.set_entities(getattr(self, "entities_", []))
        return (self._cause if self.has_cause(incident) else self._fallback).build(incident)

    def build_many(self, incidents: Iterable[Incident]) -> list[str]:
        return [self.build(inc) for inc in incidents]

    def build_text(self, text: str) -> str:
        """A free text (a query) prepared as the fields are: HTML stripped, names masked, redacted."""
        if not hasattr(self, "_cause"):
            self.set_entities(getattr(self, "entities_", []))
        return self._cause.build_text(text)
