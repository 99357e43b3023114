"""The papers' values beside the measured ones: a hand-made store whose parent run's
study.yaml declares published values (one under the study's protocol, one under another,
one cost), and the group table's md and csv built from it."""

import csv
import io
import json

import pytest
import yaml
from mlflow.tracking import MlflowClient

from orchestrator.cli import checked_study
from orchestrator.results.report import build_report
from orchestrator.study import StudyError
from tests.orchestrator.test_tables import Study, scores

GROUPS = [{"name": "t1", "title": "Table 1"}]
PUBLISHED = [
    {"arm": "lwas", "source": "Zhang et al., HiNAS (IJCV), Table 1, row 'LWAS'",
     "values": {"set12/sigma30/psnr": 30.10, "params": 424669}},
    {"arm": "basic", "source": "Zhang et al., HiNAS (IJCV), Table 1, row 'basic'",
     "note": "BSD500's test images, not Set12", "values": {"set12/sigma30/psnr": 29.50}},
    {"arm": "resl", "source": "Zhang et al., HiNAS (IJCV), Table 1, row 'ResL'",
     "values": {"bsd68/sigma30/psnr": 28.75}},  # a set this table does not test
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("published")
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.create_experiment("pub", artifact_location=str(folder / "artifacts"))
    study = Study(client, experiment, "pub", 1_000, groups=json.dumps(GROUPS))
    client.log_text(study.parent, yaml.safe_dump({"name": "pub", "published": PUBLISHED}),
                    "study.yaml")
    for seed, psnr in enumerate([30.0, 30.4]):  # lwas: mean 30.2, Δ +0.10 against 30.10
        study.retrain("lwas", 0, seed, {**scores("sigma30", psnr, 0.85),
                                        "cost/params": 400000.0}, group="t1")
    study.retrain("basic", 1, 0, {**scores("sigma30", 29.0, 0.80), "cost/params": 1.0},
                  group="t1")
    study.retrain("resl", 2, 0, {**scores("sigma30", 28.5, 0.79), "cost/params": 1.0},
                  group="t1")
    return build_report(client, study.parent)


def test_markdown_shows_published_ours_and_delta_with_sources_and_marks(files):
    text = files["results/t1.md"].decode()
    header = next(line for line in text.splitlines() if line.startswith("| arm"))
    assert ("| set12 sigma30 PSNR published | set12 sigma30 PSNR | Δ |" in header
            and "params (published)" in header)
    lwas = next(line for line in text.splitlines() if line.startswith("| lwas"))
    assert "| 30.10 [1] | 30.20 ± 0.28 (2) | +0.10 |" in lwas and "424,669 [1]" in lwas
    basic = next(line for line in text.splitlines() if line.startswith("| basic"))
    assert "| 29.50 [2]† | 29.00 ± 0.00 (1) | -0.50† |" in basic  # marked, never silently
    assert "[1] Zhang et al., HiNAS (IJCV), Table 1, row 'LWAS'." in text
    assert "[2] Zhang et al., HiNAS (IJCV), Table 1, row 'basic'. † BSD500's test images, " \
           "not Set12" in text


def test_a_value_published_on_another_test_set_is_shown_marked_under_ours(files):
    text = files["results/t1.md"].decode()
    resl = next(line for line in text.splitlines() if line.startswith("| resl"))
    assert "| 28.75 [3]† | 28.50 ± 0.00 (1) | -0.25† |" in resl
    assert "† under set12: the value published on bsd68 (another test set)" in text
    rows = {row["arm"]: row for row in csv.DictReader(io.StringIO(
        files["results/t1.csv"].decode()))}
    assert rows["resl"]["published_note"] == "set12/sigma30/psnr: published on bsd68"


def test_csv_has_published_delta_source_and_note_columns(files):
    rows = {row["arm"]: row for row in csv.DictReader(io.StringIO(
        files["results/t1.csv"].decode()))}
    assert rows["lwas"]["set12/sigma30/psnr_published"] == "30.1"  # as the study declares
    assert float(rows["lwas"]["set12/sigma30/psnr_delta"]) == pytest.approx(0.1)
    assert rows["lwas"]["params_published"] == "424669"
    assert rows["lwas"]["published_source"] == PUBLISHED[0]["source"]
    assert rows["lwas"]["published_note"] == ""
    assert rows["basic"]["published_note"] == "BSD500's test images, not Set12"
    assert rows["basic"]["params_published"] == ""  # no published value: left empty


def test_a_published_entry_naming_no_arm_is_one_line(tmp_path):
    study = tmp_path / "s.yaml"
    study.write_text("name: s\nsearch_space: {name: dncnn}\npublished:\n"
                     "  - {arm: nope, source: a paper, values: {params: 1}}\n")
    with pytest.raises(StudyError, match=r"published\.0\.arm: 'nope' is no arm of the study"):
        checked_study(str(study), None, [])


def test_the_parent_description_ends_with_the_tables_replaced_on_each_report(tmp_path):
    from orchestrator.results.report import write_report

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("d", artifact_location=str(tmp_path / "artifacts"))
    study = Study(client, experiment, "d", 1_000, groups=json.dumps(GROUPS))
    client.set_tag(study.parent, "mlflow.note.content", "## d\n\nwhat the study is")
    client.log_text(study.parent, yaml.safe_dump({"name": "d", "published": PUBLISHED}),
                    "study.yaml")
    study.retrain("lwas", 0, 0, scores("sigma30", 30.0, 0.85), group="t1")
    for _ in range(2):  # the second report replaces the first one's tables
        write_report(client, study.parent)
    note = client.get_run(study.parent).data.tags["mlflow.note.content"]
    assert note.startswith("## d\n\nwhat the study is\n\n---\n\n### Results\n")
    assert note.count("### Results") == 1 and note.count("## Table 1") == 1
    assert "| 30.10 [1] | 30.00 ± 0.00 (1) | -0.10 |" in note


def test_tables_beyond_the_tag_limit_are_named_not_cut():
    from orchestrator.results.description import LIMIT, described

    tables = [(f"results/g{i}.md", f"## g{i}\n" + "x" * 3000 + "\n") for i in range(4)]
    note = described("## s", tables)
    assert len(note) <= LIMIT and "## g0" in note and "## g1" in note and "## g2" not in note
    assert note.rstrip().endswith("(not shown here: results/g2.md, results/g3.md)")
