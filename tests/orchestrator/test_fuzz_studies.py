"""Fuzz test of the bad-input contract (docs/studies.md): the shipped studies, mutated into
malformed files by category (`study_mutations.py`), each give one clean line naming
the file or key, through the loader `validate` uses; never a traceback, never acceptance.
Each case carries its verdict from a hand-written table (`fuzz_oracle.py`), not from the
schema; the documented limits themselves (`at_limit`) must be accepted.

Beside the sampled cases, every value the table refuses and every documented limit is tried
once (`table_cases`), so that one bound widened or one type loosened fails the run.
Counts by category (tried, clean, traceback, accepted, bad_message, refused) are written to
`fuzz_counts.json` in pytest's base temporary folder and printed (`-s` shows them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from orchestrator.cli import checked_study, main
from tests.orchestrator.fuzz_cases import Case
from tests.orchestrator.fuzz_check import STATUSES, outcome, write
from tests.orchestrator.study_mutations import (
    CATEGORIES,
    STUDIES,
    malformed,
    shipped,
    table_cases,
)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", 1000))
CLI_SAMPLE, SUBPROCESS_SAMPLE = 25, 1  # through main(); of them, through `python -m`
BASES = shipped()
REPO = STUDIES.parent
QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Mutated files land here, beside the genotype files the studies name."""
    path = tmp_path_factory.mktemp("fuzz")
    (path / "genotypes").symlink_to(STUDIES / "genotypes")
    return path


@pytest.fixture(scope="module")
def tally(tmp_path_factory):
    counts: dict[str, Counter] = defaultdict(Counter)
    yield counts
    if counts:
        total = sum(counts.values(), Counter())
        report = {"total": dict(total), **{k: dict(v) for k, v in sorted(counts.items())}}
        out = tmp_path_factory.getbasetemp() / "fuzz_counts.json"
        out.write_text(json.dumps(report, indent=1))
        print(f"\nfuzz counts ({out}):")
        for name, count in [("total", total), *sorted(counts.items())]:
            print(f"  {name:14} " + "  ".join(f"{k} {count[k]}" for k in STATUSES))
        accept = sum(counts.get(name, Counter())["tried"] for name in ("at_limit",
                                                                         "table_accept"))
        print(f"  cases to accept (at_limit, table_accept) {accept}, "
              f"to refuse {total['tried'] - accept}")


@pytest.mark.parametrize("base", BASES, ids=[base.name for base in BASES])
def test_shipped_studies_validate_with_every_profile(base):
    """The control: unmutated, every study (and each of its profiles) is accepted."""
    for profile in [None, *base.document.get("profiles", {})]:
        checked_study(str(STUDIES / f"{base.name}.yaml"), profile)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=QUIET,
          database=None)
@pytest.mark.slow  # hundreds of generated studies
@given(case=malformed(BASES))
def test_every_malformed_study_is_one_line_through_the_loader(case, folder, tally):
    status, message = outcome(case, folder)
    tally[case.category]["tried"] += 1
    tally[case.category][status] += 1
    assert status == "clean", f"{case!r}: {status}: {message}"


# some 3,000 studies in about 8 s: in the inner loop, it guards every key of the table
def test_every_value_the_table_refuses_and_every_limit(folder, tally):
    """What the sampling may miss: every value the table refuses at every key, through
    `--set`, and every documented limit, each once; counted as table_reject, table_accept."""
    failures = []
    for case in table_cases():
        status, message = outcome(case, folder)
        tally[f"table_{case.expect}"]["tried"] += 1
        tally[f"table_{case.expect}"][status] += 1
        if status != "clean":
            failures.append(f"{case!r}: {status}: {message}")
    assert not failures, f"{len(failures)} failed, e.g.\n" + "\n".join(failures[:10])


@pytest.mark.slow  # hundreds of generated studies
def test_counts_by_category(tally):
    total = sum(tally.values(), Counter())
    if not total:
        pytest.skip("the fuzz test did not run")
    assert total["tried"] >= EXAMPLES and total["tried"] == total["clean"], dict(total)
    missing = set(CATEGORIES) - set(tally)
    assert len(missing) <= 2, sorted(missing)  # (nearly) every category was drawn


def cli_args(case: Case, path: Path, command: str, folder: Path) -> list[str]:
    args = [command, str(path)]
    args += ["--profile", case.profile] if case.profile else []
    args += [part for setting in case.assignments for part in ("--set", setting)]
    if command == "study":
        args += ["--dry-run", "--tracking-uri", f"sqlite:///{folder / 'mlflow.db'}"]
    return args


def one_error_line(code: int, out: str, err: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    assert "Traceback" not in err and out == ""


SEEN: list[Case] = []


@pytest.mark.slow  # fresh `python -m orchestrator` processes
@settings(max_examples=CLI_SAMPLE, deadline=None, derandomize=True,
          suppress_health_check=QUIET + [HealthCheck.function_scoped_fixture], database=None)
@given(case=malformed(BASES).filter(lambda case: case.expect == "reject"))
def test_a_sample_through_the_cli(case, folder, capfd):
    """`validate` and `study --dry-run` exit 2 with one `error:` line on stderr; the first
    few cases also run as `python -m orchestrator` (a fresh process: ~5 s each, the imports
    of torch, Ray and MLflow)."""
    SEEN.append(case)
    path = write(case, folder)
    for command in ("validate", "study"):
        code = main(cli_args(case, path, command, folder))
        one_error_line(code, *capfd.readouterr())
        if len(SEEN) <= SUBPROCESS_SAMPLE:
            began = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "orchestrator",
                                   *cli_args(case, path, command, folder)],
                                  cwd=REPO, capture_output=True, text=True, timeout=300)
            one_error_line(done.returncode, done.stdout, done.stderr)
            with capfd.disabled():
                print(f"python -m orchestrator {command}: {time.perf_counter() - began:.1f} s")
    assert not (folder / "mlflow.db").exists(), "bad input logs nothing"
