"""Genotypes: a derived architecture as a versioned JSON document.

A genotype names its search space and primitive list and holds the
space-specific architecture as plain JSON data. Loading checks the document in
two steps: its outer structure here (`GenotypeFile`, a strict pydantic model:
format, version, space, primitives, arch, provenance), then its space-specific
part by its search space (`registry.check_genotype`: a registered space, a
version it reads, `SearchSpace.validate_arch`). This module knows no space: the
registry installs that second step (`check_spaces_with`) when it is imported,
which `searchspaces/__init__.py` does before any of its modules can be used.
Every error is one line, `<source>: <field>...`.

Provenance (trial, epoch, validation score) travels with the file but is not
part of the identity: the canonical string and hash cover format, version,
space, primitives and architecture only, so the same network found by two
trials has one hash.

`version` is the genotype format's version for its space (`SearchSpace.genotype_version`,
1 unless a space changed its `arch` layout): a space reads its older versions too,
and a genotype keeps the version it was written with, so an old file keeps its hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

FORMAT = "nas-denoise-genotype"
VERSION = 1  # the first version of every space's arch layout


class GenotypeError(ValueError):
    """A genotype file or document that does not hold a valid architecture."""


class GenotypeFile(BaseModel):
    """The outer structure of a genotype document, strict as the study schema (frozen,
    unknown keys are errors, values of their JSON type); `arch` is its space's to check."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    format: str
    version: int = Field(ge=VERSION)  # the newest a space reads is the space's to check
    space: str
    primitives: list[str]
    arch: dict[str, Any]
    provenance: dict[str, Any] = Field(default_factory=dict)

    @field_validator("format")
    @classmethod
    def _ours(cls, value: str) -> str:
        if value != FORMAT:
            raise ValueError(f"format is {value!r}, expected {FORMAT!r}")
        return value

    @classmethod
    def read(cls, data: Any, source: str) -> GenotypeFile:
        """`data` as a genotype document; GenotypeError("<source>: ...") naming the first
        wrong field (missing keys first, then unknown ones, then the rest in field order)."""
        if not isinstance(data, dict):
            raise GenotypeError(f"{source}: expected a JSON object, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise GenotypeError(f"{source}: {_first_problem(error)}") from None


_ORDER = {"missing": 0, "extra_forbidden": 1}  # then any other error, by field order
_FIELDS = tuple(GenotypeFile.model_fields)
_WRONG_TYPE = {
    "space": "'space' must be a name",
    "primitives": "'primitives' must be a list of names",
    "arch": "'arch' must be an object",
    "provenance": "'provenance' must be an object",
}


def _first_problem(error: ValidationError) -> str:
    """One line for the first problem of a document (keys as the file spells them)."""

    def rank(entry: Any) -> tuple[int, str, int]:
        key, order = str(entry["loc"][0]), _ORDER.get(entry["type"])
        return (order, key, 0) if order is not None else (2, "", _FIELDS.index(key))

    first = min(error.errors(), key=rank)
    key = str(first["loc"][0])
    if first["type"] == "missing":
        return f"missing key {key!r}"
    if first["type"] == "extra_forbidden":
        return f"unknown key {key!r}"
    if first["type"] == "value_error":
        return first["msg"].removeprefix("Value error, ")
    if key == "format":
        return f"format is {first['input']!r}, expected {FORMAT!r}"
    if key == "version":
        return f"unsupported version {first['input']!r} (an integer from {VERSION})"
    return _WRONG_TYPE[key]


# The second step of loading: the genotype's space checks it (registry.check_genotype).
SpaceCheck = Callable[["Genotype", str], None]
_space_check: SpaceCheck | None = None


def check_spaces_with(check: SpaceCheck) -> None:
    """Install `check(genotype, source)`, which raises GenotypeError("<source>: ...") when
    the genotype's space does not read it (the registry installs its own on import)."""
    global _space_check
    _space_check = check


@dataclass(frozen=True)
class Genotype:
    space: str  # registered search-space name, e.g. "hinas"
    primitives: tuple[str, ...]  # candidate operation names, in op-table order
    arch: dict[str, Any]  # space-specific architecture, JSON data only
    provenance: dict[str, Any] = field(default_factory=dict, compare=False)
    version: int = VERSION  # of the space's arch layout (SearchSpace.genotype_version)

    def identity(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "space": self.space,
            "primitives": list(self.primitives),
            "arch": self.arch,
        }

    def canonical(self) -> str:
        """One-line, key-sorted JSON of everything that identifies the network."""
        return json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))

    def arch_hash(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {**self.identity(), "provenance": self.provenance}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json() + "\n")
        return path

    @classmethod
    def from_dict(cls, data: Any, source: str = "genotype") -> Genotype:
        """The genotype of a document: its structure (`GenotypeFile`), then checked by its
        space; GenotypeError("<source>: <field>...") otherwise."""
        document = GenotypeFile.read(data, source)
        genotype = cls(document.space, tuple(document.primitives), document.arch,
                       document.provenance, document.version)
        if _space_check is None:
            raise RuntimeError("no search space registry: import searchspaces")
        _space_check(genotype, source)
        return genotype

    @classmethod
    def from_json(cls, text: str, source: str = "genotype") -> Genotype:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            message = f"{source}: not valid JSON ({error.msg}, line {error.lineno})"
            raise GenotypeError(message) from None
        return cls.from_dict(data, source)

    @classmethod
    def load(cls, path: str | Path) -> Genotype:
        path = Path(path)
        return cls.from_json(path.read_text(), source=str(path))


def require_keys(value: Any, keys: tuple[str, ...], field: str) -> dict[str, Any]:
    """`value` as an object with exactly `keys` (arch validation of every space)."""
    if not isinstance(value, dict):
        raise ValueError(f"{field}: expected an object with keys {', '.join(keys)}")
    for key in keys:
        if key not in value:
            raise ValueError(f"{field}.{key}: missing")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise ValueError(f"{field}.{unknown[0]}: unknown key")
    return value
