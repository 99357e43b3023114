"""Study files: strict schema, profiles, overrides, one-line errors naming the key."""

from pathlib import Path

import pytest

from orchestrator.study.arms import arm_study, expand_arms
from orchestrator.study.reading import StudyError, load_study
from studyspec.dotted import flatten, get_dotted, with_overrides

STUDIES = Path(__file__).resolve().parents[2] / "studies"

MINIMAL = """
name: tiny
search_space: {name: hinas, options: {num_layers: 2}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str, **kwargs) -> str:
    with pytest.raises(StudyError) as caught:
        load_study(write(tmp_path, text), **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("path", sorted(STUDIES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_studies_validate_with_every_profile(path):
    study = load_study(path)
    for profile in study.profiles:
        assert load_study(path, profile=profile).name == study.name


def test_minimal_study_gets_defaults(tmp_path):
    study = load_study(write(tmp_path, MINIMAL))
    assert study.search_space.resolved_options()["num_layers"] == 2
    assert study.search.strategy == "bilevel"
    assert study.data.noise.test_keys() == ["sigma25"]


def test_unknown_key_names_its_path(tmp_path):
    message = error_of(tmp_path, MINIMAL + "search: {epochz: 3}\n")
    assert "search.epochz" in message and "unknown key" in message


def test_unknown_space_option_names_its_path(tmp_path):
    text = "name: tiny\nsearch_space: {name: hinas, options: {num_layerz: 2}}\n"
    assert "search_space" in (message := error_of(tmp_path, text)) and "num_layerz" in message


def test_unknown_space_is_named(tmp_path):
    message = error_of(tmp_path, "name: tiny\nsearch_space: {name: nope}\n")
    assert "nope" in message and "hinas" in message


def test_wrong_type_names_key(tmp_path):
    assert "search.epochs" in error_of(tmp_path, MINIMAL + "search: {epochs: many}\n")


def test_invalid_yaml_names_line(tmp_path):
    assert "line" in error_of(tmp_path, "name: [unclosed\n")


def test_missing_file(tmp_path):
    with pytest.raises(StudyError, match="not found"):
        load_study(tmp_path / "absent.yaml")


def test_profile_and_set_override(tmp_path):
    text = MINIMAL + "profiles: {smoke: {search.epochs: 2, search.warmup_epochs: 1}}\n"
    study = load_study(write(tmp_path, text), profile="smoke", assignments=["search.batch_size=3"])
    assert (study.search.epochs, study.search.batch_size) == (2, 3)


def test_unknown_profile_lists_known(tmp_path):
    text = MINIMAL + "profiles: {smoke: {search.epochs: 2}}\n"
    assert "smoke" in error_of(tmp_path, text, profile="fast")


def test_bad_set_syntax(tmp_path):
    assert "key=value" in error_of(tmp_path, MINIMAL, assignments=["search.epochs"])


def test_tune_space_keys_must_be_study_sections(tmp_path):
    text = MINIMAL + "tune: {space: {width: {type: int, low: 1, high: 2}}}\n"
    assert "tune.space" in error_of(tmp_path, text)


def test_noise_needs_one_level_source(tmp_path):
    text = MINIMAL + "data: {noise: {type: awgn, sigma: 25, sigma_range: [0, 50]}}\n"
    assert "data.noise" in error_of(tmp_path, text)


def test_grid_arms_expand_to_product_and_validate(tmp_path):
    text = MINIMAL + """
arms:
  grid:
    search_space.options.layerwise_alphas: [true, false]
    search_space.options.residual: [true, false]
  named: [{name: wide, set: {search_space.options.width: 16}}]
"""
    study = load_study(write(tmp_path, text))
    arms = expand_arms(study)
    assert [a.name for a in arms][:2] == ["layerwise_alphas=on+residual=on",
                                          "layerwise_alphas=on+residual=off"]
    assert len(arms) == 5
    assert arm_study(study, arms[-1]).search_space.options["width"] == 16


def test_bad_arm_value_names_the_arm(tmp_path):
    text = MINIMAL + "arms: {named: [{name: broken, set: {search.epochs: -1}}]}\n"
    study = load_study(write(tmp_path, text))
    with pytest.raises(StudyError, match="broken.*search.epochs"):
        arm_study(study, expand_arms(study)[0])


def test_dotted_helpers_do_not_mutate():
    tree = {"a": {"b": 1}}
    changed = with_overrides(tree, {"a.c.d": 2})
    assert tree == {"a": {"b": 1}} and get_dotted(changed, "a.c.d") == 2
    assert dict(flatten(changed)) == {"a.b": 1, "a.c.d": 2}


def test_validate_checks_every_arm_and_the_tuned_extremes(tmp_path, capsys):
    from orchestrator.cli import main

    arm_text = MINIMAL + "arms: {named: [{name: bad, set: {search_space.options.num_nodes: 0}}]}\n"
    assert main(["validate", str(write(tmp_path, arm_text))]) == 2
    error = capsys.readouterr().err
    assert "arm 'bad'" in error and "search_space.options.num_nodes" in error
    tuned = MINIMAL + ("tune: {space: {search_space.options.num_nodes: "
                       "{type: categorical, choices: [2, 0]}}}\n")
    assert main(["validate", str(write(tmp_path, tuned))]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "tune.space.search_space.options.num_nodes=0" in error
    bounded = MINIMAL + ("tune: {space: {search.epochs: {type: int, low: 0, high: 3}}}\n")
    assert main(["validate", str(write(tmp_path, bounded))]) == 2
    assert "search.epochs=0" in capsys.readouterr().err


def test_space_option_errors_carry_the_full_dotted_path(tmp_path):
    message = error_of(tmp_path, "name: t\nsearch_space: {name: hinas, options: {num_nodes: 0}}\n")
    assert "search_space.options.num_nodes:" in message and "Value error" not in message
