"""Step estimates kept on disk between commands: read back instead of measured again,
measured again when the code that builds networks changes, times scaled by the load."""

import json

import pytest

import trainables.loops.estimate_store as store
import trainables.loops.memory_study as memory_study
import trainables.loops.timing as timing
from studyspec.schema import Study

TINY = {"name": "stored", "data": {"patch_size": 24},
        "search_space": {"name": "hinas", "options": {"num_layers": 2, "num_nodes": 2,
                                                      "width": 4, "stem_channels": 8}},
        "search": {"batch_size": 2}, "retrain": {"batch_size": 2}}


@pytest.fixture()
def kept(tmp_path, monkeypatch):
    monkeypatch.setenv(store.ENV, str(tmp_path))
    forget(monkeypatch)
    return tmp_path


def forget(monkeypatch):
    """A new command: nothing kept in the process."""
    monkeypatch.setattr(memory_study, "_estimates", {})
    monkeypatch.setattr(memory_study, "_candidates", {})


def refuse(*args, **kwargs):
    raise AssertionError("measured again")


def test_a_second_command_reads_the_memory_estimates_until_the_code_changes(kept,
                                                                          monkeypatch):
    study = Study.model_validate(TINY)
    first = memory_study.study_memory(study, None, True)
    assert first["search"].step > 0 and first["retrain"].step > 0
    assert {path.name for path in kept.iterdir()} == {"memory.json", "candidates.json"}

    forget(monkeypatch)
    monkeypatch.setattr(memory_study, "meta_step_memory", refuse)
    monkeypatch.setattr(memory_study, "derived_candidates", refuse)
    assert memory_study.study_memory(study, None, True) == first

    forget(monkeypatch)
    monkeypatch.setattr(store, "code_fingerprint", lambda: "another commit's code")
    with pytest.raises(AssertionError, match="measured again"):
        memory_study.study_memory(study, None, True)


def test_a_stored_time_grows_with_the_load_since(kept, monkeypatch):
    monkeypatch.setattr(timing, "reference_now", lambda: 0.04)
    assert timing.stored_seconds(["a step"], lambda: 1.5) == 1.5
    saved = json.loads((kept / "timing.json").read_text())
    assert list(saved.values()) == [{"seconds": 1.5, "reference": 0.04}]
    monkeypatch.setattr(timing, "reference_now", lambda: 0.08)  # twice as loaded now
    assert timing.stored_seconds(["a step"], refuse) == pytest.approx(3.0)
    assert timing.stored_seconds(["another step"], lambda: 0.5) == 0.5


def test_off_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(store.ENV, "off")
    monkeypatch.setattr(store, "DEFAULT", tmp_path / "default")
    calls = []
    for _ in range(2):
        store.recalled("memory", ["k"], lambda: calls.append(1) or {"x": 1})
    assert calls == [1, 1] and not (tmp_path / "default").exists()


def test_an_unreadable_store_is_measured_again(kept):
    (kept / "memory.json").write_text("{not json")
    assert store.recalled("memory", ["k"], lambda: {"x": 2}) == {"x": 2}
    assert store.recalled("memory", ["k"], refuse) == {"x": 2}
