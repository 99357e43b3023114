"""The study keys of arms, seeds, groups, genotypes and Optuna objectives through the CLI:
bad input is one `error:` line naming the key (exit 2, no traceback), good input passes."""

from pathlib import Path

import pytest
import torch

from orchestrator.cli import main
from searchspaces.registry import get_space

BASE = """
name: keys
data: {train: embedded, test: [embedded], patch_size: 32}
search_space: {name: hinas, options: {num_layers: 2, num_nodes: 2, width: 4, stem_channels: 8}}
"""
TUNED = """
tune:
  num_samples: 2
  space:
    search_space.options.width: {type: categorical, choices: [4, 6]}
    search.loss.ssim_lambda: {type: float, low: 0.0, high: 1.0}
"""


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing lands in the repository
    yield
    assert not (tmp_path / "mlflow.db").exists(), "validation logs nothing"


def run(capsys, text: str, command: str = "validate", *extra: str) -> tuple[int, str, str]:
    path = Path("study.yaml")
    path.write_text(BASE + text)
    args = [command, str(path), *extra]
    if command == "study":
        args += ["--dry-run", "--data-root", "nowhere", "--tracking-uri", "sqlite:///mlflow.db"]
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def rejected(capsys, text: str, command: str = "validate", *extra: str) -> str:
    code, out, err = run(capsys, text, command, *extra)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and out == ""
    return lines[0]


def accepted(capsys, text: str, command: str = "validate", *extra: str) -> str:
    code, out, err = run(capsys, text, command, *extra)
    assert code == 0 and err == "", err
    return out


CASES = {  # id: (bad, what the error names, the good version)
    "named group": (
        "groups: {ablation: {title: Ablation}}\n"
        "arms: {named: [{name: a, group: ablashun}]}\n",
        ["arms.named.0.group", "'ablashun'", "ablation"],
        "groups: {ablation: {title: Ablation}}\narms: {named: [{name: a, group: ablation}]}\n"),
    "grid group": (
        "arms: {grid: {search.epochs: [30, 40]}, group: table}\n",
        ["arms.group", "'table'", "none declared"],
        "groups: {table: {}}\narms: {grid: {search.epochs: [30, 40]}, group: table}\n"),
    "no seeds": ("seeds: []\n", ["study.yaml: seeds:", "at least one"], "seeds: [0, 1]\n"),
    "study seeds repeat": ("seeds: [0, 0]\n", ["study.yaml: seeds:", "repeat"], "seeds: [0]\n"),
    "arm seeds repeat": (
        "arms: {named: [{name: a, seeds: [3, 3]}]}\n", ["arms.named.0.seeds", "repeat"],
        "arms: {named: [{name: a, seeds: [3, 4]}]}\n"),
    "arm name with slash": (
        "arms: {named: [{name: runs/a}]}\n", ["arms.named.0.name"],
        "arms: {named: [{name: runs_a}]}\n"),
    "start_from key": (
        TUNED + "  start_from: [{search.loss.ssim_lambada: 0.5}]\n",
        ["tune.start_from.0.search.loss.ssim_lambada", "tune.space"],
        TUNED + "  start_from: [{search.loss.ssim_lambda: 0.5}]\n"),
    "test metric": (
        "tune: {metric: test/set12/sigma25/psnr}\n", ["tune.metric", "test/set12/sigma25/psnr"],
        "tune: {metric: val/ssim}\n"),
    "unknown supernet metric": (
        "tune: {objective: supernet, metric: foo}\n", ["tune.metric", "'foo'", "best/score"],
        "tune: {objective: supernet, metric: best/score}\n"),
    "objective metric": (
        "tune: {objectives: [{metric: val/psnr}, {metric: cost/flops, mode: min}]}\n",
        ["tune.objectives.1.metric", "cost/flops"],
        "tune: {objectives: [{metric: val/psnr}, {metric: cost/params, mode: min}]}\n"),
    "objectives with asha": (
        "tune:\n  objectives: [{metric: val/psnr}, {metric: cost/params, mode: min}]\n"
        "  scheduler: {type: asha}\n", ["tune.scheduler", "multi-objective"],
        "tune:\n  objectives: [{metric: val/psnr}, {metric: cost/params, mode: min}]\n"),
}


@pytest.mark.parametrize("bad, names, good", CASES.values(), ids=CASES.keys())
def test_bad_key_is_named_and_good_input_passes(capsys, bad, names, good):
    error = rejected(capsys, bad)
    assert all(name in error for name in names), error
    assert "study.yaml: ok (" in accepted(capsys, good)


def genotype_file(space: str, name: str) -> str:
    searchspace = get_space(space)
    with torch.random.fork_rng(devices=[]):  # other tests' RNG untouched
        supernet = searchspace.build_supernet(searchspace.tiny_options(), 1)
    searchspace.set_one_hot(supernet).save(name)
    return name


def given(genotype: str) -> str:
    return f"arms: {{named: [{{name: given, genotype: {genotype}}}]}}\n"


@pytest.mark.parametrize("space", ["superkernel", "modnas"])
def test_genotype_of_another_space_is_refused(capsys, space):
    error = rejected(capsys, given(genotype_file(space, "other.json")), "study")
    assert "arm 'given'" in error and "genotype" in error and "other.json" in error
    assert repr(space) in error and "'hinas'" in error


@pytest.mark.parametrize("content, says", [
    (None, "file not found"),
    (b'{"format": "nas-denoise-genotype",', "not valid JSON"),
    (b"\xff\xfe\x00\x01", "not a JSON text file"),
    (b'{"format": "nas-denoise-genotype", "version": 1}', "missing key 'arch'"),
], ids=["missing", "truncated", "binary", "incomplete"])
def test_unreadable_genotype_file_is_named(capsys, content, says):
    if content is not None:
        Path("broken.json").write_bytes(content)
    error = rejected(capsys, given("broken.json"), "study")
    assert "arm 'given': genotype" in error and "broken.json" in error and says in error


def test_genotype_arm_of_the_right_space_is_planned_as_retrain_only(capsys):
    Path("arch").mkdir()
    out = accepted(capsys, given(genotype_file("hinas", "arch/ok.json")) + "seeds: [0, 1]\n",
                   "study")
    assert "arm given [hinas]: 2 unit(s)" in out and "retrain the given genotype" in out
    assert "trial 1: given/s0 retrain" in out


def test_dry_run_of_a_tuned_study_starts_from_the_given_point(capsys):
    out = accepted(capsys, TUNED + "  start_from: [{search_space.options.width: 6, "
                   "search.loss.ssim_lambda: 0.25}]\n", "study")
    first = next(line for line in out.splitlines() if "trial 1:" in line)
    assert first.strip() == ("trial 1: default/t0/s0 search (search_space.options.width=6, "
                             "search.loss.ssim_lambda=0.25)")
    assert "trial 2: default/t1/s0 search" in out


ARMS = "arms: {named: [{name: a}, {name: b, set: {search.epochs: 30}}, {name: c}]}\n"


def test_unknown_arm_on_the_command_line_lists_the_known(capsys):
    error = rejected(capsys, ARMS, "validate", "--arms", "a,zed")
    assert "--arms" in error and "'zed'" in error and "known: a, b, c" in error


def test_chosen_arms_are_the_only_ones_counted(capsys):
    assert accepted(capsys, ARMS).strip().endswith("ok (3 arm(s))")
    assert accepted(capsys, ARMS, "validate", "--arms", "b,c").strip().endswith(
        "ok (2 arm(s))")


def test_dry_run_of_trials_with_whole_cpus_times_their_steps_with_that_many_threads(capsys):
    """`resources.<phase>.cpu: 2` (a float in the schema) is two intra-op threads for the
    timed steps, as a trial gets (the dry-run of the ablation study once stopped on it)."""
    out = accepted(capsys, "resources: {search: {cpu: 2}, retrain: {cpu: 1.5}}\n", "study")
    assert "default" in out and "CPU-hours" in out
