"""The commands around finished runs: `ui`, `compare`, `export`, `rerun`, `sync` (registered
on the CLI's subparsers by `orchestrator.cli`). An unknown run or study is one line on stderr."""

from __future__ import annotations

import argparse
import sys

from trainables.tracking import default_tracking_uri

COMMANDS = ("ui", "compare", "export", "rerun", "sync")
URI_HELP = "MLflow tracking URI (default sqlite ./mlruns-local/mlflow.db)"


def add_commands(commands) -> None:
    """Add the subcommands to `commands` (an argparse subparsers action)."""
    ui = commands.add_parser("ui", help="MLflow UI on 127.0.0.1, opened on a study's runs")
    ui.add_argument("--port", type=int, default=5000, help="port (default 5000; 0: a free one)")
    ui.add_argument("--study", help="study or experiment name (default: the latest study)")
    compare = commands.add_parser("compare", help="two runs' genotypes, params and metrics")
    compare.add_argument("run_a", metavar="RUN_A", help="run id")
    compare.add_argument("run_b", metavar="RUN_B", help="run id")
    compare.add_argument("--out", default=".", help="folder of compare.png (default .)")
    export = commands.add_parser("export", help="a retrained network that loads without MLflow")
    export.add_argument("run", metavar="RUN", help="retrain run id")
    export.add_argument("--out", required=True, help="folder to write")
    rerun = commands.add_parser("rerun", help="relaunch a trial run from what it logged")
    rerun.add_argument("run", metavar="RUN", help="search or retrain run id")
    rerun.add_argument("--data-root", help="folder holding named datasets (default ./data)")
    rerun.add_argument("--storage", default="./runs", help="Tune experiment folder")
    rerun.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    rerun.add_argument("--dry-run", action="store_true", help="print the study it would run")
    rerun.add_argument("--strict", action="store_true",
                       help="do not start when the code, packages, data or evaluation protocol "
                            "differ from what the run recorded")
    sync = commands.add_parser("sync", help="send the MLflow writes studies could not deliver")
    sync.add_argument("--storage", default="./runs",
                      help="the studies' storage folder, whose spools to send (default ./runs)")
    sync.add_argument("--wait", type=float, default=30.0,
                      help="seconds to wait for a server that does not answer (default 30)")
    for command in (ui, compare, export, rerun):
        command.add_argument("--tracking-uri", help=URI_HELP)
    sync.add_argument("--tracking-uri", help="send to this server instead of the one each "
                                             "spool recorded")


def run_command(args: argparse.Namespace) -> int:
    """Run one of COMMANDS; a RunError is one line and exit code 2 (the CLI handles the
    study errors a rerun may raise)."""
    from orchestrator.commands.runs import RunError  # MLflow: only for these commands

    if args.command == "sync":
        from orchestrator.commands.sync import sync_command

        lines, complete = sync_command(args.storage, args.tracking_uri, args.wait)
        print("\n".join(lines))
        return 0 if complete else 1
    uri = args.tracking_uri or default_tracking_uri()
    try:
        if args.command == "ui":
            from orchestrator.commands.ui import serve_ui

            return serve_ui(uri, args.port, args.study)
        if args.command == "compare":
            from orchestrator.commands.compare import compare_command

            print("\n".join(compare_command(uri, args.run_a, args.run_b, args.out)))
        elif args.command == "export":
            from orchestrator.commands.export import export_run

            for path in export_run(uri, args.run, args.out):
                print(path)
        else:
            from orchestrator.commands.rerun import rerun_command

            print(rerun_command(uri, args.run, args))
    except RunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
