"""The strict YAML reader: what PyYAML's safe loader would accept silently is one clear line."""

import pytest

from orchestrator.cli import main
from orchestrator.study.yamlfile import MAX_NODES, YamlError, load_file, load_text


def bomb(levels: int, width: int) -> str:
    lines = ["l0: &l0 [1, 2]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("text", "message"), [
    ("name: a\nseed: 1\nname: b\n", "key 'name' appears twice in one mapping (line 3)"),
    ("search:\n  epochs: 1\n  epochs: 2\n", "key 'epochs' appears twice"),
    ("name: !!python/object/apply:os.system [ls]\n", "python/object/apply:os.system"),
    ("a: &a [1, *a]\n", "an alias refers to itself"),
    (bomb(6, 10), f"expands to more than {MAX_NODES:,} nodes"),
    ("name: [unclosed\n", "not valid YAML (line 2)"),
])
def test_bad_yaml_is_one_line(text, message):
    with pytest.raises(YamlError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_text(text)


def test_merge_keys_and_modest_aliases_load():
    text = "base: &b {lr: 0.1, epochs: 2}\narm:\n  <<: *b\n  epochs: 3\n" + bomb(3, 10)
    data = load_text(text)
    assert data["arm"] == {"lr": 0.1, "epochs": 3} and len(data["l2"]) == 10


def test_non_utf8_file(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(YamlError, match="not UTF-8 text"):
        load_file(path)


def test_cli_says_one_line_with_the_file(tmp_path, capsys):
    path = tmp_path / "dup.yaml"
    path.write_text("name: x\nsearch_space: {name: hinas}\nname: y\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {path}: key 'name' appears twice in one mapping (line 3)"]


def test_numbers_without_bounds_are_refused_before_anything_allocates(capsys):
    code = main(["validate", "studies/modnas.yaml", "--profile", "smoke",
                 "--set", "search_space.options.levels=1000000000000"])
    assert code == 2
    assert capsys.readouterr().err.strip().endswith(
        "search_space.options.levels: Input should be less than or equal to 10")
