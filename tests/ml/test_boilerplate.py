"""Template text discounted (ml/text/boilerplate.py): sentence keys, the filter, and the GitHub status corpus."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ml.errors import InputError, NotFittedError
from ml.text.boilerplate import BoilerplateFilter, sentence_key, split_sentences
from ml.text.documents import strip_html

GITHUB = Path(__file__).resolve().parents[3] / "shared" / "data" / "github-status" / "incidents.jsonl"

SPECIFIC = [
    "The edge certificate expired overnight and TLS handshakes failed.",
    "A retry loop filled the log volume until the disk was full.",
    "The connection pool was exhausted by a slow report query.",
    "A DNS change pointed the internal name at decommissioned hosts.",
    "A feature-flag config push went to every region without a canary.",
]
_PLACES = [
    "ledger",
    "search",
    "upload",
    "invoice",
    "session",
    "export",
    "billing",
    "mobile",
    "report",
    "queue",
]
_KINDS = ["edge", "worker", "batch", "gateway", "replica", "shard"]


def _cause(i: int) -> str:
    """A cause sentence of its own for document i (its words differ from every other document's)."""
    return (
        SPECIFIC[i % 5]
        .replace("The ", f"The {_PLACES[i % 10]} {_KINDS[i // 10 % 6]} ", 1)
        .replace("A ", f"A {_PLACES[i % 10]} {_KINDS[i // 10 % 6]} ", 1)
    )


def _corpus(n: int = 60) -> list[str]:
    """Status-page style documents: two templates with changing names, times and numbers, one cause each."""
    docs = []
    for i in range(n):
        comp = ["Pages", "Actions", "Git Operations", "Webhooks"][i % 4]
        docs.append(
            f"2023-0{1 + i % 9}-1{i % 10} 0{i % 10}:{10 + i}:00 - We are investigating reports of degraded "
            f"performance for {comp}. {_cause(i)} This incident has been resolved."
        )
    return docs


def test_split_sentences_keeps_every_character() -> None:
    text = "v1.2.3 was deployed. Then it failed!  Twice?\nNext line without end"
    parts = split_sentences(text)
    assert "".join(parts) == text
    assert parts == ["v1.2.3 was deployed. ", "Then it failed!  ", "Twice?\n", "Next line without end"]


def test_sentence_key_masks_what_templates_change() -> None:
    a = sentence_key("2023-01-12 03:10:00 - We are investigating reports of degraded performance for Pages.")
    b = sentence_key("We are investigating reports of degraded performance for Git Operations and Webhooks")
    assert a == b == "we are investigating reports of degraded performance for <name>"
    assert sentence_key("Support received 14 tickets.") == sentence_key("Support received 3 tickets.")
    assert sentence_key("Calls to host-17 timed out at 10:30 UTC.") == "calls to <id> timed out at <mask>"
    assert sentence_key("2023-01-12 10:00") == ""


def test_filter_removes_templates_and_keeps_specific_sentences() -> None:
    docs = _corpus()
    bp = BoilerplateFilter()
    assert bp.fit(docs) is bp
    assert "we are investigating reports of degraded performance for <name>" in bp.sentences_
    assert "this incident has been resolved" in bp.sentences_
    assert len(bp.sentences_) == 2
    out = bp.transform(docs)
    for i, cleaned in enumerate(out):
        assert cleaned == _cause(i)


def test_a_document_of_only_boilerplate_is_kept_whole() -> None:
    bp = BoilerplateFilter().fit(_corpus())
    only = "We are investigating reports of degraded performance for Pages. This incident has been resolved."
    assert bp.transform([only]) == [only]
    assert bp.transform([only], keep_whole=False) == [""]
    assert bp.is_boilerplate("This incident has been resolved.")
    assert not bp.is_boilerplate(_cause(0))


def test_min_docs_protects_small_corpora() -> None:
    docs = [f"{_cause(i)} Shared sentence in three." if i < 3 else _cause(i) for i in range(10)]
    assert "shared sentence in three" not in BoilerplateFilter(min_docs=5).fit(docs).sentences_
    assert "shared sentence in three" in BoilerplateFilter(min_docs=3).fit(docs).sentences_


def test_names_are_masked_wherever_they_stand() -> None:
    docs = [f"{c} is operating normally. {_cause(i)}" for i, c in enumerate(["Pages", "Actions"] * 20)]
    plain = BoilerplateFilter(max_doc_share=0.6).fit(docs)
    named = BoilerplateFilter(max_doc_share=0.6).fit(docs, names=["Pages", "Actions"])
    assert plain.sentences_ == []  # each component's sentence is in half of the documents only
    assert named.sentences_ == ["is operating normally"]
    assert named.transform(["Webhooks is operating normally. Pages is operating normally. Disk full."]) == [
        "Webhooks is operating normally. Disk full."
    ]


def test_to_dict_from_dict_round_trip_through_json() -> None:
    docs = _corpus()
    bp = BoilerplateFilter(max_doc_share=0.05, min_docs=4).fit(docs, names=["Pages"])
    data = json.loads(json.dumps(bp.to_dict()))
    again = BoilerplateFilter.from_dict(data)
    assert again.sentences_ == bp.sentences_ and again.get_params() == bp.get_params()
    assert again.transform(docs) == bp.transform(docs)
    with pytest.raises(InputError) as err:
        BoilerplateFilter.from_dict({"format": "something-else"})
    assert err.value.field == "format"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"max_doc_share": 1.5}, "max_doc_share"),
        ({"max_doc_share": 0}, "max_doc_share"),
        ({"min_docs": 0}, "min_docs"),
    ],
)
def test_bad_parameters_name_the_parameter(params: dict[str, float], field: str) -> None:
    with pytest.raises(InputError) as err:
        BoilerplateFilter(**params).fit(_corpus(10))  # type: ignore[arg-type]
    assert err.value.field == field and "\n" not in str(err.value)


def test_bad_input_and_not_fitted() -> None:
    with pytest.raises(InputError) as err:
        BoilerplateFilter().fit("one string")  # type: ignore[arg-type]
    assert err.value.field == "texts"
    with pytest.raises(InputError) as err:
        BoilerplateFilter().fit(["ok", 3])  # type: ignore[list-item]
    assert err.value.field == "texts[1]"
    with pytest.raises(NotFittedError):
        BoilerplateFilter().transform(["text"])


def test_sentence_work_is_linear_on_hostile_text() -> None:
    hostile = "a" * 200_000 + "." * 100_000 + "1:" * 50_000 + "[" * 50_000 + "x." * 50_000
    t0 = time.perf_counter()
    split_sentences(hostile)
    sentence_key(hostile)
    assert time.perf_counter() - t0 < 2.0


@pytest.mark.skipif(not GITHUB.is_file(), reason="../shared/data/github-status is not on this machine")
def test_github_status_templates_are_removed_and_causes_stay() -> None:
    records = [json.loads(line) for line in GITHUB.read_text().splitlines() if line.strip()]
    docs = [strip_html(r["text"]) for r in records]
    components = [c for r in records for c in r["components"]]
    bp = BoilerplateFilter().fit(docs, names=components)
    assert bp.is_boilerplate("We are investigating reports of degraded performance for Git Operations.")
    assert bp.is_boilerplate("Codespaces is operating normally.")
    assert bp.is_boilerplate("This incident has been resolved.")
    assert not bp.is_boilerplate("A networking problem is causing an outage, we're investigating")
    assert not bp.is_boilerplate("Small outage just now was caused by a file server failover.")
    out = bp.transform(docs, keep_whole=False)
    before = sum("reports of degraded performance for" in d for d in docs)
    after = sum("reports of degraded performance for" in d for d in out)
    # the rest: updates that run into the next one with no full stop ("... for Actions This incident has ...")
    assert before > 250 and after < 0.15 * before
    assert sum(a != b for a, b in zip(docs, out, strict=True)) > 0.8 * len(docs)
    assert "file server failover" in out[1]
    # for embedding, a document that is nothing but templates stays whole; for names it has no cause
    whole = bp.transform(docs)
    emptied = [i for i, o in enumerate(out) if not o]
    assert 100 < len(emptied) < 0.3 * len(docs)
    assert all(whole[i] == docs[i] for i in emptied) and all(whole)


@pytest.mark.parametrize("bad", [{"format": "other"}, ["not", "a", "dict"], {}])
def test_from_dict_refuses_other_formats(bad: object) -> None:
    from ml.text.entities import EntityMasker

    for cls in (BoilerplateFilter, EntityMasker):
        with pytest.raises(InputError, match="has format"):
            cls.from_dict(bad)  # type: ignore[arg-type]
