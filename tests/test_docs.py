"""The documentation cannot drift from the code: docs/commands.md and docs/study-keys.md are
what docs/generate.py makes of the CLI parsers and the schema today; the README stays a
guide; every page it links exists; nothing cites what a reader cannot open."""

import importlib.util
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def generator():
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["commands.md", "study-keys.md"])
def test_generated_pages_match_the_code(name):
    expected = generator().pages()[name]
    assert (ROOT / "docs" / name).read_text() == expected, \
        f"docs/{name} is stale: run `python docs/generate.py`"


def test_every_flag_and_key_is_on_its_page():
    """Independent of the generator: each flag of every parser and each top-level section
    of a study file appears on its page."""
    from bench.runner import parser as bench_parser
    from orchestrator.cli import parser
    from studyspec.schema import Study

    module = generator()
    commands = (ROOT / "docs" / "commands.md").read_text()
    for program in (parser(), bench_parser()):
        for command in [program, *module.subcommands(program).values()]:
            for action in command._actions:
                if action.dest == "help":
                    continue  # -h / --help: the page says once that --help prints the same
                for flag in action.option_strings:
                    assert f"`{flag}" in commands, flag
    keys = (ROOT / "docs" / "study-keys.md").read_text()
    for name in Study.model_fields:
        assert f"| `{name}` |" in keys, name
    for key in ("retrain.divergence_factor", "search_space.module",
                "retrain.optimizer.warmup_steps", "tune.space.NAME.type",
                "search_space.options.variant"):
        assert f"`{key}`" in keys, key


def test_the_readme_is_a_guide_whose_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for target in re.findall(r"\]\(([^)#]+)", readme):
        assert (ROOT / target).exists(), target
    for page in (ROOT / "docs").glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} -> {target}"


def test_nothing_cites_the_issue_tracker_or_a_private_spec():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True,
                           text=True).stdout.split()
    pattern = re.compile(r"SPEC [0-9]|[Ii]ssue [0-9]|[Ii]ssues? #[0-9]")
    found = [f"{name}:{number}" for name in files if Path(ROOT / name).suffix in
             {".py", ".md", ".yaml", ".toml", ".txt"}
             for number, line in enumerate((ROOT / name).read_text().splitlines(), 1)
             if pattern.search(line)]
    assert found == []
