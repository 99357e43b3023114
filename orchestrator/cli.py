"""Command line: `python -m orchestrator study|validate|report|ui|compare|export|rerun ...`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from orchestrator.commands import COMMANDS, URI_HELP, add_commands
from orchestrator.study import StudyError

if TYPE_CHECKING:
    from orchestrator.run import PreparedArms
    from studyspec.schema import Study


def user_errors() -> tuple[type[Exception], ...]:
    """The errors a user can fix: one line on stderr, exit code 2 (imported when one is
    raised: `validate` does not load what the other commands need)."""
    from orchestrator.results import ReportError
    from orchestrator.run import ResourceError, StorageError, TrialsFailed
    from searchspaces.genotype import GenotypeError
    from trainables.data import DataError

    return (StudyError, DataError, GenotypeError, TrialsFailed, ResourceError, ReportError,
            StorageError)


def report_command(target: str, tracking_uri: str | None, out: str | None = None,
                   storage: str | None = None, html: str | None = None) -> list[str]:
    """Rebuild the tables of a study's parent run from MLflow alone, after sending what the
    study left unsent (`sync`); the artifact paths (or, with `out`, the files written there
    with provenance.json; with `html`, that self-contained HTML file)."""
    from mlflow.tracking import MlflowClient

    from orchestrator.commands import sync_command
    from orchestrator.results import resolve_parent, write_report
    from trainables.tracking import default_tracking_uri

    uri = tracking_uri or default_tracking_uri()
    client = MlflowClient(uri)
    parent = resolve_parent(client, target)
    lines, _ = sync_command(storage, uri, wait=10.0, parent=parent)
    if lines != ["nothing to send"]:
        print("\n".join(lines), file=sys.stderr)
    return write_report(client, parent, out, html)


def checked_study(file: str, profile: str | None = None, assignments: tuple[str, ...] = (),
                  data_root: str | None = None, arms: tuple[str, ...] = (),
                  tracking_uri: str | None = None) -> tuple[Study, PreparedArms]:
    """What `validate` and `study --dry-run` check, raising one of `user_errors()`: the file,
    its profile and overrides, every arm with its tuned extremes, genotype file and data."""
    from orchestrator.run import RunOptions, prepare_arms, resolve_uri
    from orchestrator.study import check_published, load_study

    study = load_study(file, profile, assignments, data_root)
    check_published(file)
    uri = resolve_uri(study, RunOptions(tracking_uri))
    return study, prepare_arms(study, file, arms, uri)


def arm_list(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m orchestrator", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    for name, help_text in (("study", "run a study file"), (
            "validate", "check a study file in a moment (its steps' memory and cost: "
                        "study --dry-run)")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("file", help="study YAML, e.g. studies/quickstart.yaml")
        command.add_argument("--profile", help="named profile of the file, e.g. smoke")
        command.add_argument("--set", dest="assignments", action="append", default=[],
                             metavar="KEY=VALUE", help="override a dotted key (repeatable)")
        command.add_argument("--data-root", help="folder holding named datasets (default ./data)")
        command.add_argument("--arms", type=arm_list, default=(), metavar="NAME[,NAME...]",
                             help="only these arms of the study")
    study = commands.choices["study"]
    study.add_argument("--tracking-uri", help=URI_HELP)
    study.add_argument("--storage", default="./runs",
                       help="Tune experiment folder (checkpoints) or s3:// / gs:// URI")
    study.add_argument("--address", help="address of a running Ray cluster (default: local)")
    study.add_argument("--resume", action="store_true", help="continue an interrupted study")
    study.add_argument("--dry-run", action="store_true", help="validate and print the plan")
    study.add_argument("--no-cache", action="store_true",
                       help="run every unit, even those an earlier study already finished")
    study.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2),
                       help="0 quiet, 1 a status line per arm (default), 2 Tune's tables too")
    report = commands.add_parser("report", help="rebuild a study's tables from MLflow")
    report.add_argument("target", help="parent run id, or study (experiment) name")
    report.add_argument("--tracking-uri", help=URI_HELP)
    report.add_argument("--out", help="also write the tables, pictures and provenance.json "
                                      "to this folder")
    report.add_argument("--html", metavar="FILE",
                        help="also write the whole report as one self-contained HTML file")
    report.add_argument("--storage", default="./runs",
                        help="the study's storage folder, whose unsent MLflow writes are sent "
                             "first (default ./runs)")
    add_commands(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    # the terminal shows our lines and one-line errors, not MLflow's download bars
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        if args.command in COMMANDS:
            from orchestrator.commands import run_command

            return run_command(args)
        if args.command == "report":
            for path in report_command(args.target, args.tracking_uri, args.out, args.storage,
                                       args.html):
                print(path)
            return 0
        if args.command == "validate" or args.dry_run:
            study, prepared = checked_study(args.file, args.profile, args.assignments,
                                            args.data_root, args.arms,
                                            getattr(args, "tracking_uri", None))
            if args.command == "validate":  # in a moment: weights and optimiser state
                from orchestrator.run import checked_weights

                checked_weights(prepared.plans)
                print(f"{args.file}: ok ({len(prepared.plans)} arm(s))")
                return 0
            from orchestrator.run import (
                RunOptions,
                checked_memory,
                plan_text,
                resolve_uri,
                study_cost,
            )

            memory = checked_memory(prepared.plans)  # a whole step, vs this machine
            cost = study_cost(study, prepared, args.file, resolve_uri(
                study, RunOptions(args.tracking_uri)))
            print(plan_text(study, prepared.plans, memory, cost))
            return 0
        from orchestrator.run import RunOptions, run_study
        from orchestrator.study import check_published, load_study

        study = load_study(args.file, args.profile, args.assignments, args.data_root)
        check_published(args.file)
        options = RunOptions(args.tracking_uri, args.storage, args.address, args.resume,
                             args.file, args.verbose, args.arms, tuple(argv), args.no_cache)
        outcome = run_study(study, options)
    except Exception as error:
        from orchestrator.run import StudyStopped

        if isinstance(error, StudyStopped):
            print(error, file=sys.stderr)
            return error.exit_code
        if not isinstance(error, user_errors()):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    where = f"; results in {outcome.results_at}" if outcome.results_at else ""
    print(f"study {study.name}: {outcome.finished} retrained network(s) logged to MLflow{where}")
    return 0
