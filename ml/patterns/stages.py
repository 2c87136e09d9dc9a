"""The swappable stages of the pattern model, as small protocols.

:class:`~ml.patterns.model.PatternModel` needs only these methods and attributes of its stages, so any object
that has them can stand in (a stage that does nothing, another embedder, another clusterer). Each stage records
its parameters (``get_params``) and the model saves them with the stage's kind, so a saved model says which
stage it used; ``tests/ml/test_contracts.py`` checks the defaults against these protocols and the scikit-learn
contract.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ml.io.schemas import Incident

__all__ = ["Clusterer", "DocumentView", "Embedder", "Labeller"]


@runtime_checkable
class DocumentView(Protocol):
    """Incidents -> the text a stage looks at (e.g. :class:`~ml.patterns.views.RootCauseView`)."""

    mask_entities: bool

    @property
    def fields(self) -> tuple[str, ...]: ...

    def fit(self, incidents: Iterable[Incident], y: None = None) -> Any: ...

    def build_many(self, incidents: Iterable[Incident]) -> list[str]: ...

    def build_text(self, text: str) -> str: ...


@runtime_checkable
class Embedder(Protocol):
    """Texts -> sentence vectors (e.g. :class:`~ml.text.embedding.Embedder`)."""

    @property
    def model_id(self) -> str: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class Clusterer(Protocol):
    """Vectors -> pattern labels, centres and a way to place new vectors (e.g.
    :class:`~ml.patterns.clustering.PatternClusterer`)."""

    def get_params(self) -> dict[str, Any]: ...

    def fit(self, X: np.ndarray, y: np.ndarray | None = None, init: np.ndarray | None = None) -> Any: ...

    def transform(self, X: np.ndarray) -> np.ndarray: ...

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class Labeller(Protocol):
    """Documents and labels -> names, keywords and representatives (e.g.
    :class:`~ml.patterns.labelling.PatternLabeller`)."""

    def get_params(self) -> dict[str, Any]: ...

    def fit(self, docs: Sequence[str], labels: np.ndarray, **kwargs: Any) -> Any: ...
