"""Genotypes: a derived architecture as a versioned JSON document (SPEC 5.3).

A genotype names its search space and primitive list and holds the
space-specific architecture as plain JSON data; the search space validates
that part on load (see `registry.SearchSpace.validate_arch`). Provenance
(trial, epoch, validation score) travels with the file but is not part of
the identity: the canonical string and hash cover format, version, space,
primitives and architecture only, so the same network found by two trials
has one hash.

`version` is the genotype format's version for its space (`SearchSpace.genotype_version`,
1 unless a space changed its `arch` layout): a space reads its older versions too,
and a genotype keeps the version it was written with, so an old file keeps its hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "nas-denoise-genotype"
VERSION = 1  # the first version of every space's arch layout


class GenotypeError(ValueError):
    """A genotype file or document that does not hold a valid architecture."""


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
        if not isinstance(data, dict):
            raise GenotypeError(f"{source}: expected a JSON object, got {type(data).__name__}")
        expected = {"format", "version", "space", "primitives", "arch"}
        missing = sorted(expected - data.keys())
        if missing:
            raise GenotypeError(f"{source}: missing key '{missing[0]}'")
        unknown = sorted(data.keys() - expected - {"provenance"})
        if unknown:
            raise GenotypeError(f"{source}: unknown key '{unknown[0]}'")
        if data["format"] != FORMAT:
            raise GenotypeError(f"{source}: format is {data['format']!r}, expected {FORMAT!r}")
        primitives = data["primitives"]
        if not isinstance(primitives, list) or not all(isinstance(p, str) for p in primitives):
            raise GenotypeError(f"{source}: 'primitives' must be a list of names")
        if not isinstance(data["arch"], dict):
            raise GenotypeError(f"{source}: 'arch' must be an object")
        provenance = data.get("provenance", {})
        if not isinstance(provenance, dict):
            raise GenotypeError(f"{source}: 'provenance' must be an object")
        version = data["version"]
        genotype = cls(str(data["space"]), tuple(primitives), data["arch"], provenance,
                       version if isinstance(version, int) else VERSION)
        from searchspaces.registry import get_space  # late import: registry imports us

        try:
            space = get_space(genotype.space)
            newest = space.genotype_version
            if isinstance(version, bool) or not isinstance(version, int) or \
                    not VERSION <= version <= newest:
                raise GenotypeError(f"{source}: unsupported version {version!r} (space "
                                    f"{genotype.space!r} reads {VERSION}-{newest})")
            space.validate_arch(genotype)
        except KeyError as error:
            raise GenotypeError(f"{source}: {error.args[0]}") from None
        except GenotypeError:
            raise
        except (ValueError, TypeError) as error:
            raise GenotypeError(f"{source}: {error}") from None
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
