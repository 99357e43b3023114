"""Command line: `python -m orchestrator study FILE` and `python -m orchestrator validate FILE`."""

from __future__ import annotations

import argparse
import sys

from orchestrator.arms import arm_study, checked_arms, expand_arms
from orchestrator.runner import (
    ResourceError,
    RunOptions,
    TrialsFailed,
    prepare_arms,
    run_study,
)
from orchestrator.studyfile import StudyError, load_study
from searchspaces.genotype import GenotypeError
from trainables.images import DataError

USER_ERRORS = (StudyError, DataError, GenotypeError, TrialsFailed, ResourceError)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m orchestrator", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    for name, help_text in (("study", "run a study file"), ("validate", "check a study file")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("file", help="study YAML, e.g. studies/quickstart.yaml")
        command.add_argument("--profile", help="named profile of the file, e.g. smoke")
        command.add_argument("--set", dest="assignments", action="append", default=[],
                             metavar="KEY=VALUE", help="override a dotted key (repeatable)")
        command.add_argument("--data-root", help="folder holding named datasets (default ./data)")
    study = commands.choices["study"]
    study.add_argument("--tracking-uri", help="MLflow tracking URI (default sqlite ./mlflow.db)")
    study.add_argument("--storage", default="./runs", help="Tune experiment folder (checkpoints)")
    study.add_argument("--address", help="address of a running Ray cluster (default: local)")
    study.add_argument("--resume", action="store_true", help="continue an interrupted study")
    study.add_argument("--dry-run", action="store_true", help="validate and print the plan")
    study.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2),
                       help="0 quiet, 1 a line per trial epoch (default), 2 Tune's tables too")
    return root


def plan(study) -> str:
    lines = [f"study {study.name}: train {study.data.train}, test {', '.join(study.data.test)}"]
    for arm in expand_arms(study):
        resolved = arm_study(study, arm)
        tuned = ", ".join(resolved.tune.space) or "nothing (seed repeats)"
        lines.append(
            f"  arm {arm.name} [{resolved.search_space.name}, {resolved.search.strategy}]: "
            f"{resolved.tune.num_samples} search trial(s) tuning {tuned}; "
            f"{resolved.search.epochs} search epochs; retrain top {resolved.retrain.top_k} "
            f"for {resolved.retrain.epochs} epochs")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        study = load_study(args.file, args.profile, args.assignments, args.data_root)
        if args.command == "validate":
            print(f"{args.file}: ok ({len(checked_arms(study, args.file))} arm(s))")
            return 0
        if args.dry_run:
            prepare_arms(study, args.file)  # datasets exist and fit the patch size
            print(plan(study))
            return 0
        options = RunOptions(args.tracking_uri, args.storage, args.address, args.resume,
                             args.file, args.verbose)
        rows = run_study(study, options)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"study {study.name}: {len(rows)} retrained architecture(s) logged to MLflow")
    return 0
