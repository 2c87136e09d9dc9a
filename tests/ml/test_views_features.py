"""The root-cause view (ml/patterns/views.py) and the hybrid features (ml/patterns/features.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from ml.errors import InputError, NotFittedError
from ml.io.schemas import Incident
from ml.patterns.features import HybridFeatures, LexicalProjector
from ml.patterns.model import split_labels
from ml.patterns.views import RootCauseView

T0 = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def incident(i: int, root_cause: str | None, factors: list[str] | None = None, **kw: object) -> Incident:
    return Incident(
        id=f"INC-{i}",
        title=kw.pop("title", f"Checkout errors {i}"),  # type: ignore[arg-type]
        summary=kw.pop("summary", "Customers saw elevated error rates on checkout-api."),  # type: ignore[arg-type]
        impact="Payments failed for 20 minutes.",
        root_cause=root_cause,
        contributing_factors=factors or [],
        service="checkout-api",
        started_at=T0 + dt.timedelta(days=i),
        **kw,  # type: ignore[arg-type]
    )


def test_root_cause_view_reads_the_cause_and_falls_back_to_the_symptoms() -> None:
    incs = [
        incident(1, "The TLS certificate on checkout-api expired; renewal had failed.", ["no expiry alert"]),
        incident(2, None, ["connection pool too small for the new traffic"]),
        incident(3, "   ", title="Checkout down", summary="An outage of checkout-api; cause not found."),
    ]
    view = RootCauseView().fit(incs)
    docs = view.build_many(incs)
    assert "certificate" in docs[0] and "no expiry alert" in docs[0]
    assert "elevated error rates" not in docs[0] and "Payments failed" not in docs[0]  # no symptoms
    assert "checkout-api" not in docs[0]  # the service is masked: a pattern spans services
    assert docs[1].startswith("connection pool too small for the new traffic")
    assert "Checkout down" in docs[2] and "cause not found" in docs[2]  # fallback: title and summary
    assert [view.has_cause(i) for i in incs] == [True, True, False]
    assert (
        view.build_text("Mail me at ann@example.com about checkout-api")
        == "Mail me at [EMAIL] about [SERVICE]"
    )
    with pytest.raises(InputError):
        RootCauseView(cause_fields=()).fit(incs)


CORPUS = [
    "the certificate expired and the renewal job failed",
    "an expired certificate broke tls handshakes",
    "certificate renewal failed silently before expiry",
    "the disk filled up with debug logs",
    "logs filled the disk and writes failed",
    "the volume ran out of disk space",
    "connection pool exhausted by a leak",
    "the pool ran out of connections under load",
]


def test_lexical_projector_separates_topics_and_round_trips(tmp_path: Path) -> None:
    proj = LexicalProjector(n_components=3, min_df=1, max_df=1.0).fit(CORPUS)
    Z = proj.transform(CORPUS)
    assert Z.shape == (8, 3) and np.allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)
    sims = Z @ Z.T
    assert sims[0, 1] > sims[0, 3] and sims[3, 4] > sims[3, 6]  # same cause closer than another cause
    loaded = LexicalProjector.from_dir(proj.to_dir(tmp_path / "lex"))
    np.testing.assert_allclose(loaded.transform(CORPUS), Z, atol=1e-6)
    assert np.all(loaded.transform(["nothing in the vocabulary here"]) == 0)
    with pytest.raises(NotFittedError):
        LexicalProjector().transform(CORPUS)
    with pytest.raises(InputError) as exc:
        LexicalProjector(n_components=0).fit(CORPUS)
    assert exc.value.field == "n_components"


def test_lexical_projector_refuses_arrays_that_disagree(tmp_path: Path) -> None:
    out = LexicalProjector(n_components=3, min_df=1, max_df=1.0).fit(CORPUS).to_dir(tmp_path / "lex")
    np.save(out / "idf.npy", np.ones(3, dtype=np.float32), allow_pickle=False)
    with pytest.raises(InputError):
        LexicalProjector.from_dir(out)


def test_hybrid_cosine_is_the_weighted_mean_of_both_sides(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(8, 16)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    feats = HybridFeatures(lexical_weight=0.4, lexical=LexicalProjector(n_components=3, min_df=1, max_df=1.0))
    Z = feats.fit_transform(CORPUS, dense)
    lex = feats.lexical_.transform(CORPUS)
    np.testing.assert_allclose(Z @ Z.T, 0.6 * dense @ dense.T + 0.4 * lex @ lex.T, atol=1e-5)
    np.testing.assert_allclose(feats.dense_part(Z), dense, atol=1e-5)
    loaded = HybridFeatures.from_dir(feats.to_dir(tmp_path / "features"))
    np.testing.assert_allclose(loaded.transform(CORPUS, dense), Z, atol=1e-6)
    assert HybridFeatures(lexical_weight=0.0).fit(CORPUS, dense).transform(CORPUS, dense).shape == (8, 16)
    with pytest.raises(InputError) as exc:
        HybridFeatures(lexical_weight=1.0).fit(CORPUS, dense)
    assert exc.value.field == "lexical_weight"
    with pytest.raises(InputError):
        HybridFeatures().fit(CORPUS, dense[:3])


def test_split_labels_hides_a_held_out_share() -> None:
    incs = [incident(i, "cause", root_cause_category="cert" if i % 2 else "disk") for i in range(20)]
    incs += [incident(100 + i, "cause") for i in range(5)]
    for_fit, held = split_labels(incs, held_out=0.3, seed=1)
    assert len(for_fit) == 25 and len(held) == 6
    held_ids = {i.id for i in held}
    assert all(i.root_cause_category for i in held)
    assert all(i.root_cause_category is None for i in for_fit if i.id in held_ids)
    assert sum(1 for i in for_fit if i.root_cause_category) == 14
    with pytest.raises(InputError):
        split_labels(incs, held_out=1.0)
