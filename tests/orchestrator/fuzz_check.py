"""The fuzz test's check of one case through the loader `validate` uses (`checked_study`).

A case to be refused must give one line naming its key, located there (`search.epochs:
...`, list indices allowed, `tune.space.<key>=<value>: ...` for a tuned value) or quoting
the refused name (`unknown dataset 'bogus'`); a case of a category without a table (broken
YAML, bad bytes, ...) one line naming the file or the mutated key. A documented limit must
be accepted.

Statuses: clean (the expected verdict, in the expected form), traceback (any other
exception), accepted (a case to be refused was not), bad_message (refused, but not in
one line naming the key), refused (a documented limit was refused).
"""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator.cli import checked_study, user_errors
from tests.orchestrator.fuzz_cases import Case

STATUSES = ("tried", "clean", "traceback", "accepted", "bad_message", "refused")


def write(case: Case, folder: Path) -> Path:
    path = folder / f"{case.study}.yaml"
    path.write_bytes(case.data)
    return path


def located(message: str, key: str) -> bool:
    """`key` (dotted, `[]` for any list index) as the place the message is about, or a place
    inside it (`baselines.0.name` for an entry `bogus` of `baselines`)."""
    parts = [re.escape(part) for part in key.split(".") if part != "[]"]
    pattern = r"(?<![\w-])" + r"(?:\.\d+)?\.".join(parts) + r"(?:\.[\w-]+)*(?:: |=)"
    return re.search(pattern, message) is not None


def named(case: Case, message: str, path: Path) -> bool:
    if case.key:
        quoted = isinstance(case.value, str) and repr(case.value) in message
        return any(located(message, key) for key in (case.key, *case.also)) or quoted
    last = [part for part in case.where.split(".") if not part.isdigit()][-1:]
    return str(path) in message or bool(last and last[0] in message)


def outcome(case: Case, folder: Path) -> tuple[str, str]:
    """(status, message) of one case."""
    path = write(case, folder)
    try:
        checked_study(str(path), case.profile, case.assignments)
    except user_errors() as error:
        message = str(error)
        if case.expect == "accept":
            return "refused", message
        one_line = message and "\n" not in message
        return ("clean" if one_line and named(case, message, path) else "bad_message"), message
    except Exception as error:  # noqa: BLE001  (any other exception breaks the contract)
        return "traceback", f"{type(error).__name__}: {error}"
    return ("clean" if case.expect == "accept" else "accepted"), ""
