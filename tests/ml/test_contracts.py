"""One contract test over every swappable stage (scikit-learn's estimator contract, adapted).

Each entry of ``STAGES`` is a factory: how to make the stage, fit it on small known data, use it, and call it with
a bad input. Every stage must:

- satisfy its protocol and clone through ``to_dict``/``from_dict`` (a saved model records which stage it used);
- return itself from ``fit`` and learn only ``*_`` attributes: its parameters (``vars()`` without the trailing
  underscore names) are the same before and after ``fit``;
- refuse use before ``fit`` with :class:`NotFittedError`;
- answer a bad input with one :class:`RecurError` that names the field and the value.

To add a stage (reducer, clusterer, labeller, embedder...), append a :class:`StageCase` to ``STAGES``.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.errors import NotFittedError, RecurError
from ml.indicators.candidates import (
    AutoARIMA,
    AutoETS,
    AutoTheta,
    ForecastingCandidate,
    ProphetCandidate,
    SeasonalNaive,
    candidate_from_dict,
)
from ml.indicators.config import ForecastConfig
from ml.indicators.grid import to_grid
from ml.indicators.seasonality import _prepare, _Prepared
from ml.io.schemas import Incident
from ml.patterns.clustering import PatternClusterer
from ml.patterns.features import HybridFeatures, LexicalProjector
from ml.patterns.granularity import GranularitySearch
from ml.patterns.labelling import PatternLabeller
from ml.patterns.views import RootCauseView
from ml.text.boilerplate import BoilerplateFilter
from ml.text.documents import STOP_WORDS
from ml.text.entities import EntityMasker


@dataclass(frozen=True)
class StageCase:
    """How to exercise one stage implementation."""

    id: str
    make: Callable[[], Any]  # a new, unfitted stage
    fit: Callable[[Any], Any]  # fit it on small known data; returns what fit returned
    use: Callable[[Any], Any]  # a call that needs a fitted stage
    bad_input: Callable[[Any], Any]  # a call (given the fitted stage) with one bad value
    bad_field: str  # the field the error must name
    bad_value: Any  # the value the error must carry
    # rebuild an unfitted stage from ``to_dict()`` (stages whose unfitted to_dict records their parameters) ...
    from_dict: Callable[[dict[str, Any]], Any] | None = None
    # ... or from ``get_params()`` (stages whose to_dict holds what fit learned)
    from_params: Callable[[dict[str, Any]], Any] | None = None
    # fitted stage -> saved -> loaded (JSON text or files under the folder given), for stages that save
    save_load: Callable[[Any, Path], Any] | None = None
    protocol: type | None = None
    needs_fit: bool = True  # use before fit is a NotFittedError


# --------------------------------------------------------------------------------------------------------------
# Forecasting candidates
# --------------------------------------------------------------------------------------------------------------


def _window() -> _Prepared:
    rng = np.random.default_rng(3)
    ds = [str(d.date()) for d in pd.date_range("2024-01-01", periods=60, freq="W-MON")]
    y = (20 + np.cumsum(rng.normal(0, 1, 60)) * 0.3 + rng.normal(0, 1, 60)).round(2).tolist()
    grid = to_grid(ds, y)
    return _prepare(grid.y, grid.dates, grid.freq)


_WINDOW = _window()
_CONFIG = ForecastConfig(seed=0)


def _candidate(make: Callable[[], Any], id: str) -> StageCase:
    return StageCase(
        id=id,
        make=make,
        fit=lambda c: c.fit(_WINDOW, _CONFIG),
        use=lambda c: c.predict(4, 80),
        from_dict=candidate_from_dict,
        bad_input=lambda c: c.predict(0, 80),
        bad_field="horizon",
        bad_value=0,
        protocol=ForecastingCandidate,
    )


CANDIDATES: list[StageCase] = [
    _candidate(SeasonalNaive, "seasonal_naive"),
    _candidate(AutoETS, "auto_ets"),
    _candidate(AutoTheta, "auto_theta"),
    _candidate(AutoARIMA, "auto_arima"),
    _candidate(ProphetCandidate, "prophet"),
    # a seed of its own, unlike the config's: fit must not overwrite it
    _candidate(lambda: ProphetCandidate(seed=7), "prophet-seeded"),
]


# --------------------------------------------------------------------------------------------------------------
# Pattern stages: views, template and name filters, features, clustering, granularity, labelling
# --------------------------------------------------------------------------------------------------------------

T0 = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
_CAUSES = {
    "cert": [
        "The TLS certificate on Ledgerbox expired; the renewal job had failed silently.",
        "An expired certificate broke TLS handshakes with Ledgerbox after renewal failed.",
        "Certificate renewal failed and the certificate expired on the edge proxy.",
        "The intermediate certificate expired because renewal was never automated.",
        "TLS handshakes failed: the certificate expired after a failed renewal.",
        "Renewal of the certificate failed, so the certificate expired at midnight.",
    ],
    "disk": [
        "The disk filled up with debug logs written by Ledgerbox.",
        "Debug logs filled the disk and database writes failed.",
        "The volume ran out of disk space after log rotation stopped.",
        "Log rotation was disabled and the disk filled up with logs.",
        "The data disk filled up; writes failed until logs were removed.",
        "Verbose logs filled the disk of the queue nodes.",
    ],
    "pool": [
        "The connection pool was exhausted by a leak in the retry path.",
        "A connection leak exhausted the database connection pool under load.",
        "The pool ran out of connections when traffic doubled.",
        "Connection pool exhaustion: idle connections were never returned.",
        "The connection pool was too small for the new traffic and ran out.",
        "Leaked connections exhausted the pool within an hour of the deploy.",
    ],
}
_TEMPLATE = " We are continuing to monitor for any further issues."
DOCS = [c + _TEMPLATE for causes in _CAUSES.values() for c in causes]
LABELS = np.repeat(np.arange(len(_CAUSES)), [len(v) for v in _CAUSES.values()])


def _incidents() -> list[Incident]:
    out = []
    for i, doc in enumerate(DOCS):
        out.append(
            Incident(
                id=f"INC-{i}",
                title=f"Checkout errors {i}",
                summary="Customers saw elevated error rates on checkout-api.",
                root_cause=None if i % 5 == 4 else doc,
                contributing_factors=[] if i % 5 == 4 else ["no alert on checkout-api"],
                service="checkout-api",
                started_at=T0 + dt.timedelta(days=i),
            )
        )
    return out


INCIDENTS = _incidents()


def _dense(seed: int = 0) -> np.ndarray:
    """Unit vectors around one direction per group (what sentence vectors of DOCS look like, roughly)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(_CAUSES), 16))
    X = centres[LABELS] + 0.3 * rng.normal(size=(len(DOCS), 16))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


DENSE = _dense()


def _blobs(per: int = 30, k: int = 4, dim: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim)) * 3
    return np.vstack([c + rng.normal(size=(per, dim)) for c in centres]).astype(np.float32)


BLOBS = _blobs()
LAYOUT = _blobs(dim=5, seed=1)


def _json(data: dict[str, Any]) -> dict[str, Any]:
    """Through JSON text, as a saved model stores it."""
    out: dict[str, Any] = json.loads(json.dumps(data))
    return out


def _clusterer(**kw: Any) -> Callable[[], PatternClusterer]:
    return lambda: PatternClusterer(random_state=0, n_neighbors=10, **kw)


def _clusterer_from_params(p: dict[str, Any]) -> PatternClusterer:
    gran = p.get("granularity")
    return PatternClusterer(**{**p, "granularity": GranularitySearch(**gran) if gran is not None else None})


def _clusterer_case(id: str, make: Callable[[], PatternClusterer], bad: dict[str, Any]) -> StageCase:
    ((name, value),) = bad.items()
    return StageCase(
        id=id,
        make=make,
        fit=lambda c: c.fit(BLOBS),
        use=lambda c: c.predict(BLOBS),
        from_params=_clusterer_from_params,
        bad_input=lambda c: _clusterer_from_params({**c.get_params(), name: value}).fit(BLOBS),
        bad_field=name,
        bad_value=value,
    )


PATTERN_STAGES: list[StageCase] = [
    StageCase(
        id="root_cause_view",
        make=RootCauseView,
        fit=lambda v: v.fit(INCIDENTS),
        use=lambda v: v.build_many(INCIDENTS),
        from_params=lambda p: RootCauseView(**p),
        save_load=lambda v, _: RootCauseView(**_json(v.get_params())).set_entities(
            _json({"e": v.entities_})["e"]
        ),
        bad_input=lambda v: RootCauseView(cause_fields=[]).fit(INCIDENTS),
        bad_field="cause_fields",
        bad_value=[],
        # like DocumentBuilder, an unfitted view builds text with no learned names to mask
        needs_fit=False,
    ),
    StageCase(
        id="boilerplate_filter",
        make=lambda: BoilerplateFilter(max_doc_share=0.3, min_docs=3),
        fit=lambda b: b.fit(DOCS, names=["Ledgerbox"]),
        use=lambda b: b.transform(DOCS),
        from_params=lambda p: BoilerplateFilter(**p),
        save_load=lambda b, _: BoilerplateFilter.from_dict(_json(b.to_dict())),
        bad_input=lambda b: BoilerplateFilter(max_doc_share=1.5).fit(DOCS),
        bad_field="max_doc_share",
        bad_value=1.5,
    ),
    StageCase(
        id="entity_masker",
        make=EntityMasker,
        fit=lambda m: m.fit(DOCS, names=["checkout-api"]),
        use=lambda m: [m.mask(d) for d in DOCS],
        from_params=lambda p: EntityMasker(**p),
        save_load=lambda m, _: EntityMasker.from_dict(_json(m.to_dict())),
        bad_input=lambda m: EntityMasker(min_mentions=0).fit(DOCS),
        bad_field="min_mentions",
        bad_value=0,
    ),
    StageCase(
        id="lexical_projector",
        make=lambda: LexicalProjector(n_components=4, min_df=1),
        fit=lambda p: p.fit(DOCS),
        use=lambda p: p.transform(DOCS),
        from_params=lambda p: LexicalProjector(**p),
        save_load=lambda p, folder: LexicalProjector.from_dir(p.to_dir(folder / "lexical")),
        bad_input=lambda p: LexicalProjector(n_components=0).fit(DOCS),
        bad_field="n_components",
        bad_value=0,
    ),
    StageCase(
        id="hybrid_features",
        make=lambda: HybridFeatures(lexical_weight=0.4, lexical=LexicalProjector(n_components=4, min_df=1)),
        fit=lambda h: h.fit(DOCS, DENSE),
        use=lambda h: h.transform(DOCS, DENSE),
        from_params=lambda p: HybridFeatures(p["lexical_weight"], LexicalProjector(**p["lexical"])),
        save_load=lambda h, folder: HybridFeatures.from_dir(h.to_dir(folder / "features")),
        bad_input=lambda h: HybridFeatures(lexical_weight=1.0).fit(DOCS, DENSE),
        bad_field="lexical_weight",
        bad_value=1.0,
    ),
    _clusterer_case("pattern_clusterer", _clusterer(min_cluster_size=8), {"min_cluster_size": 1}),
    _clusterer_case(
        "pattern_clusterer-auto",
        _clusterer(
            min_cluster_size="auto", outlier_threshold="auto", granularity=GranularitySearch(n_bootstrap=2)
        ),
        {"outlier_threshold": 2.0},
    ),
    StageCase(
        id="granularity_search",
        make=lambda: GranularitySearch(n_bootstrap=2, k_range=(2, 8)),
        fit=lambda g: g.fit(LAYOUT),
        use=lambda g: g.best,
        from_params=lambda p: GranularitySearch(**p),
        bad_input=lambda g: GranularitySearch(n_bootstrap=0).fit(LAYOUT),
        bad_field="n_bootstrap",
        bad_value=0,
    ),
    StageCase(
        id="pattern_labeller",
        make=lambda: PatternLabeller(min_df=1, n_keywords=5),
        fit=lambda lab: lab.fit(DOCS, LABELS),
        use=lambda lab: [lab.keywords(0), lab.keywords(2), lab.names_, lab.representatives_],
        from_params=lambda p: PatternLabeller(**p),
        save_load=lambda lab, _: PatternLabeller.from_dict(_json(lab.to_dict())),
        bad_input=lambda lab: PatternLabeller(min_df=1).fit(DOCS, np.where(LABELS == 0, -2, LABELS)),
        bad_field="labels",
        bad_value=-2,
    ),
    StageCase(
        id="pattern_labeller-stop_words",
        # "failed" and "expired" as stop words: no name or keyword may hold them, in the clone too
        make=lambda: PatternLabeller(min_df=1, n_keywords=5, stop_words=STOP_WORDS | {"failed", "expired"}),
        fit=lambda lab: lab.fit(DOCS, LABELS),
        use=lambda lab: [lab.keywords(0), lab.names_],
        from_params=lambda p: PatternLabeller(**p),
        save_load=lambda lab, _: PatternLabeller.from_dict(_json(lab.to_dict())),
        bad_input=lambda lab: PatternLabeller(stop_words="none").fit(DOCS, LABELS),
        bad_field="stop_words",
        bad_value="none",
    ),
]

STAGES: list[StageCase] = CANDIDATES + PATTERN_STAGES


def _snapshot(value: Any) -> Any:
    """A comparable copy: nested stages by their attributes (learned ones included), arrays as lists."""
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tolist())
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_snapshot(v) for v in value)
    if hasattr(value, "get_params") or hasattr(value, "to_dict"):
        return (type(value).__name__, {k: _snapshot(v) for k, v in vars(value).items()})
    return copy.deepcopy(value)


def params(stage: Any) -> dict[str, Any]:
    """The parameters of a stage: its public attributes except the learned ``*_`` ones (private caches out)."""
    return {k: _snapshot(v) for k, v in vars(stage).items() if not k.endswith("_") and not k.startswith("_")}


def recorded(stage: Any) -> Any:
    """What a stage records about its parameters: ``get_params()``, else its (unfitted) ``to_dict()``."""
    return stage.get_params() if hasattr(stage, "get_params") else stage.to_dict()


def clone(case: StageCase, stage: Any) -> Any:
    if case.from_params is not None:
        return case.from_params(stage.get_params())
    assert case.from_dict is not None, f"{case.id}: no way to clone it"
    return case.from_dict(stage.to_dict())


def same(a: Any, b: Any) -> bool:
    """Equal outputs: arrays to float tolerance, dataclasses and objects by their fields."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        x, y = np.asarray(a), np.asarray(b)
        if x.shape != y.shape:
            return False
        if x.dtype.kind in "fc" or y.dtype.kind in "fc":
            return bool(np.allclose(x, y, atol=1e-5, equal_nan=True))
        return bool(np.array_equal(x, y))
    if isinstance(a, float) and isinstance(b, float):
        return bool(np.isclose(a, b, equal_nan=True))
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and same(dataclasses.asdict(a), dataclasses.asdict(b))  # type: ignore[arg-type]
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "__dict__") and not isinstance(a, type):
        return type(a) is type(b) and same(vars(a), vars(b))
    return bool(a == b)


_FITTED: dict[str, Any] = {}


def fitted(case: StageCase) -> Any:
    """One fitted stage per case, shared by the tests that only read it."""
    if case.id not in _FITTED:
        _FITTED[case.id] = case.fit(case.make())
    return _FITTED[case.id]


@pytest.fixture(params=STAGES, ids=lambda c: c.id)
def case(request: pytest.FixtureRequest) -> StageCase:
    return request.param


@pytest.mark.parametrize("case", [c for c in STAGES if c.protocol is not None], ids=lambda c: c.id)
def test_satisfies_its_protocol(case: StageCase) -> None:
    assert case.protocol is not None and isinstance(case.make(), case.protocol)


def test_clones_with_the_same_parameters(case: StageCase) -> None:
    stage = case.make()
    data = recorded(stage)
    copy_ = clone(case, stage)
    assert type(copy_) is type(stage)
    assert recorded(copy_) == data
    if case.from_params is not None:  # cloned through get_params: it records every constructor parameter
        named = set(inspect.signature(type(stage).__init__).parameters) - {"self"}
        assert named == set(data)
    json.dumps(data)  # JSON-ready: a saved model records it
    # a fitted stage records the same parameters as the unfitted one
    assert recorded(fitted(case)) == data


def test_fit_returns_self_and_does_not_write_parameters(case: StageCase) -> None:
    stage = case.make()
    before = params(stage)
    before_recorded = copy.deepcopy(recorded(stage))
    keys = set(vars(stage))
    assert case.fit(stage) is stage
    assert params(stage) == before
    assert recorded(stage) == before_recorded
    learned = {k for k in set(vars(stage)) - keys if not k.startswith("_")}
    assert learned and all(k.endswith("_") for k in learned)


@pytest.mark.parametrize("case", [c for c in STAGES if c.needs_fit], ids=lambda c: c.id)
def test_use_before_fit_is_a_not_fitted_error(case: StageCase) -> None:
    with pytest.raises(NotFittedError):
        case.use(case.make())


def test_bad_input_is_one_clear_error_naming_the_value(case: StageCase) -> None:
    stage = fitted(case)
    with pytest.raises(RecurError) as exc:
        case.bad_input(stage)
    assert exc.value.field == case.bad_field
    assert exc.value.value == case.bad_value
    assert repr(case.bad_value) in exc.value.message or str(case.bad_value) in exc.value.message
    assert "\n" not in exc.value.message


def test_clone_fits_to_the_same_output(case: StageCase) -> None:
    stage = fitted(case)
    copy_ = case.fit(clone(case, stage))
    assert same(case.use(stage), case.use(copy_))


@pytest.mark.parametrize("case", [c for c in STAGES if c.save_load is not None], ids=lambda c: c.id)
def test_save_and_load_round_trip(case: StageCase, tmp_path: Path) -> None:
    stage = fitted(case)
    assert case.save_load is not None
    loaded = case.save_load(stage, tmp_path)
    assert type(loaded) is type(stage)
    assert recorded(loaded) == recorded(stage)
    assert same(case.use(loaded), case.use(stage))


def test_unknown_candidate_in_a_saved_entry_names_it() -> None:
    with pytest.raises(RecurError) as exc:
        candidate_from_dict({"name": "lstm", "params": {}})
    assert exc.value.field == "candidates" and exc.value.value == "lstm" and "'lstm'" in exc.value.message
    with pytest.raises(RecurError) as exc:
        candidate_from_dict({"name": "prophet", "params": {"sed": 1}})
    assert exc.value.field == "params" and exc.value.value == {"sed": 1}


def test_default_pattern_stages_satisfy_the_stage_protocols() -> None:
    """PatternModel takes any object with the methods of ml/patterns/stages.py; its defaults have them."""
    from ml.patterns.clustering import PatternClusterer
    from ml.patterns.labelling import PatternLabeller
    from ml.patterns.stages import Clusterer, DocumentView, Embedder, Labeller
    from ml.patterns.views import RootCauseView
    from ml.text.documents import DocumentBuilder
    from ml.text.embedding import Embedder as MiniLM

    assert isinstance(RootCauseView(), DocumentView) and isinstance(DocumentBuilder(), DocumentView)
    assert isinstance(MiniLM(), Embedder)
    assert isinstance(PatternClusterer(), Clusterer)
    assert isinstance(PatternLabeller(), Labeller)
    assert not isinstance(object(), Clusterer)
