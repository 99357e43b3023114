"""Reading a study file: YAML -> profile and --set overrides -> one validated `Study`.

Every problem is a `StudyError` with one line that names the file and the
dotted key path, e.g. `studies/x.yaml: search.epochs: Input should be ...`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.study.yamlfile import YamlError, load_file, load_text
from studyspec.dotted import with_overrides
from studyspec.fields import located
from studyspec.schema import Study


class StudyError(ValueError):
    """A study file, profile or override that cannot be used."""


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"{path}: study file not found")
    try:
        data = load_file(path)
    except (YamlError, OSError) as error:
        raise StudyError(f"{path}: {error}") from None
    if not isinstance(data, dict):
        raise StudyError(f"{path}: expected a mapping at the top level")
    return data


def parse_assignment(text: str) -> tuple[str, Any]:
    """`key.path=value` with the value read as YAML (`3`, `true`, `[1, 2]`, `abc`)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise StudyError(f"--set {text!r}: expected key=value")
    try:
        value = load_text(raw)
    except YamlError as error:
        raise StudyError(f"--set {text!r}: value is {error}") from None
    return key.strip(), value


def apply_profile(raw: dict[str, Any], profile: str | None, source: str) -> dict[str, Any]:
    profiles = raw.get("profiles") or {}
    if profile is None:
        return raw
    if not isinstance(profiles, dict):
        raise StudyError(f"{source}: profiles: expected a mapping of profile names")
    if profile not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise StudyError(f"{source}: profiles.{profile}: no such profile (known: {known})")
    overrides = profiles[profile]
    if not isinstance(overrides, dict):
        raise StudyError(f"{source}: profiles.{profile}: expected a mapping of dotted keys")
    try:
        return with_overrides(raw, overrides)
    except ValueError as error:
        raise StudyError(f"{source}: profiles.{profile}: {error}") from None


def format_validation_error(error: ValidationError, source: str) -> str:
    path, message, wrong = located(error)
    nested = re.match(r"(options(?:\.\w+)+): (.*)", message)
    if nested and path:  # a space's own option error: one dotted path from the top
        path, message = f"{path}.{nested.group(1)}", nested.group(2)
    more = f" (+{wrong - 1} more)" if wrong > 1 else ""
    return f"{source}: {path}: {message}{more}" if path else f"{source}: {message}{more}"


def validate(raw: dict[str, Any], source: str = "study") -> Study:
    try:
        return Study.model_validate(raw)
    except ValidationError as error:
        raise StudyError(format_validation_error(error, source)) from None


def load_study(
    path: str | Path,
    profile: str | None = None,
    assignments: list[str] | tuple[str, ...] = (),
    data_root: str | None = None,
) -> Study:
    """The one entry point: file + profile + `--set` overrides, validated once."""
    source = str(path)
    raw = apply_profile(read_yaml(path), profile, source)
    overrides = dict(parse_assignment(text) for text in assignments)
    if data_root is not None:
        overrides["data.root"] = data_root
    try:
        raw = with_overrides(raw, overrides)
    except ValueError as error:
        raise StudyError(f"{source}: --set {error}") from None
    return validate(raw, source)
