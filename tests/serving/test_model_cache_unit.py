"""The local model cache's settings and its writes (no model needed): the folder setting validated at start-up,
and a write killed midway never leaves a half entry current."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from ml.registry.artifacts import MANIFEST
from serving.model_cache import CURRENT, CacheError, ModelCache
from serving.settings import SettingsError, load_serving_settings


def test_cache_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("RECUR_") or key == "MLFLOW_TRACKING_URI":
            monkeypatch.delenv(key)
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    monkeypatch.setenv("RECUR_MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("RECUR_MODEL_CACHE_DIR", "")  # empty means unset: beside the SQLite store
    assert load_serving_settings().model_cache_path == tmp_path / "store" / "serving-cache"
    monkeypatch.setenv("RECUR_MODEL_CACHE", "false")
    assert load_serving_settings().model_cache_path is None
    monkeypatch.setenv("RECUR_MODEL_CACHE", "true")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    monkeypatch.setenv("RECUR_MODEL_CACHE_DIR", str(a_file))
    with pytest.raises(SettingsError) as err:
        load_serving_settings()
    assert str(err.value) == f"RECUR_MODEL_CACHE_DIR ({a_file}): not a folder"
    monkeypatch.setenv("RECUR_MODEL_CACHE_DIR", str(a_file / "below"))
    with pytest.raises(SettingsError, match=r"^RECUR_MODEL_CACHE_DIR \(.*\): cannot create it"):
        load_serving_settings()
    monkeypatch.setenv("RECUR_MODEL_CACHE", "maybe")
    with pytest.raises(SettingsError, match="^RECUR_MODEL_CACHE: "):
        load_serving_settings()


def _fake_artifact(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True)
    (folder / MANIFEST).write_text(text)
    return folder


def test_a_write_killed_midway_leaves_the_previous_copy_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import serving.model_cache as mc

    cache = ModelCache(tmp_path, "sqlite:///x.db")
    cache.save("m", "1", None, _fake_artifact(cache.staging("m") / "a", "one"), "artifacts/model")
    real = mc._write_json_atomic

    def killed(path: Path, data: dict) -> None:
        if path.name == CURRENT:
            raise KeyboardInterrupt  # the process dies before the pointer moves
        real(path, data)

    monkeypatch.setattr(mc, "_write_json_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        cache.save("m", "2", None, _fake_artifact(cache.staging("m") / "b", "two"), "artifacts/model")
    monkeypatch.setattr(mc, "_write_json_atomic", real)
    current = cache.current("m")
    assert current.version == "1" and (current.root / MANIFEST).read_text() == "one"
    cache.save("m", "3", None, _fake_artifact(cache.staging("m") / "c", "three"), "artifacts/model")
    assert cache.current("m").version == "3"
    left = sorted(
        p.name for p in (tmp_path / cache.registry / "m").iterdir() if not p.name.startswith(".tmp-")
    )
    assert left == [CURRENT, json.loads((tmp_path / cache.registry / "m" / CURRENT).read_text())["dir"]]


def test_a_copy_is_read_only_as_written(tmp_path: Path) -> None:
    """A pointer to a folder outside the model's, an entry of another registry or model, or a manifest changed
    after the write are refused, one line each; another registry's cache never sees the copy."""
    cache = ModelCache(tmp_path, "sqlite:///a.db")
    cache.save("m", "1", "run", _fake_artifact(cache.staging("m") / "a", "one"), "artifacts/model")
    folder = tmp_path / cache.registry / "m"
    pointer = json.loads((folder / CURRENT).read_text())
    assert not ModelCache(tmp_path, "sqlite:///b.db").has("m")

    (folder / CURRENT).write_text(json.dumps({**pointer, "dir": "../../etc"}))
    with pytest.raises(CacheError, match="does not name a version and its folder"):
        cache.current("m")
    (folder / CURRENT).write_text(json.dumps({**pointer, "version": "1\nINFO forged log line"}))
    with pytest.raises(CacheError, match="does not name a version$"):  # it reaches logs and /readyz
        cache.current("m")
    (folder / CURRENT).write_text(json.dumps({**pointer, "version": "2"}))
    with pytest.raises(CacheError, match="says version '1', expected '2'"):
        cache.current("m")
    (folder / CURRENT).write_text(json.dumps(pointer))
    assert cache.current("m").run_id == "run"
    (folder / pointer["dir"] / "model" / MANIFEST).write_text("changed")
    with pytest.raises(CacheError, match="manifest differs"):
        cache.current("m")
    cache.discard("m")
    assert not cache.has("m")
    assert [p.name for p in folder.iterdir() if not p.name.startswith(".tmp-")] == []  # (the test's staging)


def test_links_and_a_changed_manifest_place_are_refused_and_nothing_is_removed_through_a_link(
    tmp_path: Path,
) -> None:
    """A copy is read only from real folders under the cache (a link could point it at any folder the service
    can read), its manifest's place must stay a relative path (it is joined to the registry's download URI for
    the check), and discarding or pruning never follows a link."""
    cache = ModelCache(tmp_path / "cache", "sqlite:///a.db")
    assert (
        cache.save("m", "1", None, _fake_artifact(cache.staging("m") / "a", "one"), "x/../y").manifest_path
        == ""
    )
    entry = cache.save("m", "1", None, _fake_artifact(cache.staging("m") / "b", "one"), "artifacts/model")
    assert cache.current("m").manifest_path == "artifacts/model"
    folder = tmp_path / "cache" / cache.registry / "m"
    pointer = json.loads((folder / CURRENT).read_text())
    record = json.loads((folder / pointer["dir"] / "entry.json").read_text())
    for bad in ("../../other-run/artifacts", "/abs", "s3://bucket/x", "a//b"):
        (folder / pointer["dir"] / "entry.json").write_text(json.dumps({**record, "manifest_path": bad}))
        with pytest.raises(CacheError, match="manifest_path .* not a relative path"):
            cache.current("m")
    (folder / pointer["dir"] / "entry.json").write_text(json.dumps(record))
    assert cache.current("m").root == entry.root

    elsewhere = tmp_path / "elsewhere"
    (entry.root.parent).rename(elsewhere)  # the entry's folder replaced by a link to a copy outside the cache
    (folder / pointer["dir"]).symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(CacheError, match="is a link"):
        cache.current("m")
    cache.discard("m")
    assert not cache.has("m") and (elsewhere / "model" / MANIFEST).read_text() == "one"
    assert not (folder / pointer["dir"]).exists()  # the link itself went

    cache.save("m", "2", None, _fake_artifact(cache.staging("m") / "c", "two"), "artifacts/model")
    victim = tmp_path / "victim"
    (victim / "m" / "v1-0123abcd").mkdir(parents=True)
    (tmp_path / "cache" / cache.registry).rename(tmp_path / "moved")
    (tmp_path / "cache" / cache.registry).symlink_to(victim, target_is_directory=True)
    with pytest.raises(CacheError, match="is a link"):
        cache.current("m")
    cache.discard("m")
    assert (victim / "m" / "v1-0123abcd").is_dir()  # nothing removed through the link


def test_a_local_copy_that_differs_is_not_served_when_the_registrys_copy_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry answers with the same version but another manifest, and its copy fails validation: neither is
    served (the local copy is forgotten), /readyz says the version was refused, and it is not retried."""
    from ml.registry.artifacts import ArtifactError
    from serving.models import ModelStore

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")  # what ModelStore would set, undone after
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    store = ModelStore("sqlite:///x.db", names=("m",), cache_dir=tmp_path)
    assert store.cache is not None
    store.cache.save(
        "m", "3", "run", _fake_artifact(store.cache.staging("m") / "a", "one"), "artifacts/model"
    )
    monkeypatch.setattr(store, "_build", lambda root, name: object())  # no real model needed here
    assert store.open_cached()["m"]["status"] == "loaded" and store.status()["m"]["source"] == "local copy"

    loads: list[str] = []

    def refused(name: str, version: str, run_id: str | None) -> None:
        loads.append(version)
        raise ArtifactError("model artifact m: content differs from the manifest's SHA-256")

    monkeypatch.setattr(store, "_champion", lambda name: ("3", "run"))
    monkeypatch.setattr(store, "_same_as_registry", lambda name, version: False)
    monkeypatch.setattr(store, "_load", refused)
    assert store.reload(only_missing=True)["m"] == {"status": "refused", "version": None, "refused": "3"}
    status = store.status()["m"]
    assert (
        status["loaded"] is False
        and status["reason"] == "m v3 was refused: its artifact is missing, incomplete or corrupt"
    )
    assert not store.cache.has("m") and store.needs_registry()
    assert store.reload(only_missing=True)["m"]["status"] == "refused" and loads == ["3"]  # not tried again


def test_a_registry_without_a_champion_leaves_the_local_copy_serving_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serving.models import ModelStore

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    store = ModelStore("sqlite:///x.db", names=("m",), cache_dir=tmp_path)
    assert store.cache is not None
    store.cache.save(
        "m", "3", "run", _fake_artifact(store.cache.staging("m") / "a", "one"), "artifacts/model"
    )
    monkeypatch.setattr(store, "_build", lambda root, name: object())
    store.open_cached()
    monkeypatch.setattr(store, "_champion", lambda name: None)
    assert store.reload(only_missing=True)["m"] == {"status": "missing", "version": "3"}
    status = store.status()["m"]
    assert status["loaded"] is True and status["source"] == "local copy"
    assert status["detail"] == "served from the local copy of v3; the registry has no 'champion' version"
    assert not store.needs_registry()  # checked: nothing newer to load


def test_the_poller_outlives_a_failing_poll_and_reports_its_first_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # the first poll after a start from local copies comes early and reports; an unexpected error in a poll is
    # logged and the next poll runs
    from serving.models import Poller

    class Flaky:
        def __init__(self) -> None:
            self.calls = 0

        def needs_registry(self) -> bool:
            return True

        def reload(self, only_missing: bool = False) -> dict[str, dict[str, object]]:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("boom")
            return {"m": {"status": "unchanged", "version": "1"}}

    store, first = Flaky(), []
    poller = Poller(store, 0.0, retry_s=0.05, first_s=0.01, on_first=first.append)  # type: ignore[arg-type]
    with caplog.at_level("ERROR", logger="serving.models"):
        poller.start()
        deadline = time.monotonic() + 5
        while store.calls < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        poller.stop()
    assert store.calls >= 3 and "model poll failed" in caplog.text
    assert first == []  # the first poll failed: nothing to report, and later polls do not report
    ok, reported = Flaky(), []
    ok.calls = 1  # its first poll succeeds
    early = Poller(ok, 0.0, retry_s=60.0, first_s=0.01, on_first=reported.append)  # type: ignore[arg-type]
    early.start()
    deadline = time.monotonic() + 5
    while not reported and time.monotonic() < deadline:
        time.sleep(0.01)
    early.stop()
    assert reported == [{"m": {"status": "unchanged", "version": "1"}}] and ok.calls == 2
