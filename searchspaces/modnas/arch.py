"""Typed (pydantic) model of a MoD-NAS genotype's `arch` (format in `space.py`).

Validation runs in two passes: the frame (the scalar fields: stages, levels,
width, ...) first, then the denoisers with the frame's rules as validation
context, so a layer's check knows the width, the channel multiple, the depth
search and the genotype's primitives. Every problem raises ValueError naming
the field by its path, e.g. `arch.denoisers[0].encoder[1].layers[2].channels:
12 is not a multiple of channel_multiple 8 (nor the full width 64)`.

Keys by genotype version: 2 added `skip_join` and `stem` (version 1: `add`,
`searched`), 3 added `share_architecture` (version 1-2: false, one denoiser
per stage). A key of a later version is unknown in an earlier one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from searchspaces.genotype import Genotype
from searchspaces.modnas.operations import OPS, SKIP
from searchspaces.modnas.options import multiple_within_width, one_stage_without_unfolding
from searchspaces.modnas.unet import NUM_LAYERS

VERSION_KEYS = {2: ("skip_join", "stem"), 3: ("share_architecture",)}  # added in that version
OLD_DEFAULTS = {"skip_join": "add", "stem": "searched", "share_architecture": False}


@dataclass(frozen=True)
class Rules:
    """What a layer is checked against: the frame's fields and the genotype's primitives."""

    primitives: frozenset[str]
    width: int
    multiple: int
    depth_search: str
    levels: int
    fixed_stem: bool


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def check_channels(value: int | None, gated: bool, rules: Rules) -> None:
    if not gated:
        if value is not None:
            raise ValueError("must be null for an op without channels of its own")
        return
    if value is None or value < 1:
        raise ValueError(f"expected an integer >= 1, got {value!r}")
    if value > rules.width:
        raise ValueError(f"{value} is above the width {rules.width}")
    if value % rules.multiple and value != rules.width:
        raise ValueError(f"{value} is not a multiple of channel_multiple {rules.multiple} "
                         f"(nor the full width {rules.width})")


class Op(Strict):
    """A sampling layer: its op and kept output channels (null: the op has none)."""

    op: str
    channels: int | None

    def check(self, role: str, rules: Rules, where: str) -> None:
        """Raise ValueError("<where>.<field>: message")."""
        if self.op not in OPS or OPS[self.op].role != role:
            raise ValueError(f"{where}.op: unknown {role} op {self.op!r}")
        if self.op not in rules.primitives:
            raise ValueError(f"{where}.op: {self.op!r} is not in the genotype's primitives")
        if self.op == SKIP and rules.depth_search != "skip_op":
            raise ValueError(f"{where}.op: 'skip' is a candidate only with depth_search skip_op")
        try:
            check_channels(self.channels, OPS[self.op].gated, rules)
        except ValueError as error:
            raise ValueError(f"{where}.channels: {error}") from None


class Layer(Op):
    """A normal layer: op, channels and its kept input path (0 = block input)."""

    input: int = Field(ge=0)

    def check_input(self, j: int, rules: Rules, where: str) -> None:
        """Layer j (1-based) reads 0 (j = 1), j - 1 (skip_op) or one of 0..j-1 (dense)."""
        if j == 1 and self.input != 0:
            raise ValueError(f"{where}.input: layer 1 reads the block input (0), got "
                             f"{self.input}")
        if rules.depth_search == "skip_op" and self.input != j - 1:
            raise ValueError(f"{where}.input: layers are chained with depth_search skip_op "
                             f"(expected {j - 1}), got {self.input}")
        if self.input > j - 1:
            raise ValueError(f"{where}.input: {self.input} out of range (layer {j} reads "
                             f"0..{j - 1})")


class Block(Strict):
    layers: list[Layer] = Field(min_length=NUM_LAYERS, max_length=NUM_LAYERS)
    down: Op | None = None
    up: Op | None = None

    def check(self, sampling: str | None, rules: Rules, where: str) -> None:
        """`sampling`: the block's sampling layer ("down", "up" or None: the last
        decoding block)."""
        for key in ("down", "up"):
            present = getattr(self, key) is not None
            if present and key != sampling:
                raise ValueError(f"{where}.{key}: unknown key here")
            if not present and key == sampling:
                raise ValueError(f"{where}.{key}: missing")
        for j, layer in enumerate(self.layers, start=1):
            layer.check("normal", rules, f"{where}.layers[{j - 1}]")
            layer.check_input(j, rules, f"{where}.layers[{j - 1}]")
        if sampling is not None:
            getattr(self, sampling).check(sampling, rules, f"{where}.{sampling}")


class Stem(Strict):
    channels: int


class Denoiser(Strict):
    """One U-net; its model validator raises ValueError("<relative path>: message")."""

    stem: Stem
    encoder: list[Block]
    decoder: list[Block]

    @model_validator(mode="after")
    def _fits_rules(self, info: ValidationInfo) -> Denoiser:
        rules: Rules = info.context["rules"]
        channels = self.stem.channels
        if rules.fixed_stem:  # not searched: any width up to the full one
            if not 1 <= channels <= rules.width:
                raise ValueError(f"stem.channels: {channels} is not within 1..{rules.width}")
        else:
            try:
                check_channels(channels, True, rules)
            except ValueError as error:
                raise ValueError(f"stem.channels: {error}") from None
        for key, blocks, count in (("encoder", self.encoder, rules.levels - 1),
                                   ("decoder", self.decoder, rules.levels)):
            if len(blocks) != count:
                raise ValueError(f"{key}: expected a list of {count} blocks")
        for level, block in enumerate(self.encoder):
            block.check("down", rules, f"encoder[{level}]")
        for level, block in enumerate(self.decoder):
            block.check("up" if level > 0 else None, rules, f"decoder[{level}]")
        return self


class Frame(BaseModel):
    """The scalar fields of an arch (the denoisers are checked against them)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    unfolding: bool
    stages: int = Field(ge=1)
    levels: int = Field(ge=1)
    width: int = Field(ge=1)
    channel_multiple: int = Field(ge=1)
    depth_search: Literal["dense", "skip_op"]
    skip_join: Literal["concat", "concat1x1", "add"]
    stem: Literal["fixed", "searched"]
    share_architecture: bool

    _multiple = field_validator("channel_multiple")(multiple_within_width)
    _stages = field_validator("stages")(one_stage_without_unfolding)


class Arch(Frame):
    model_config = ConfigDict(extra="forbid", strict=True)

    denoisers: list[Denoiser]

    @field_validator("denoisers")
    @classmethod
    def _one_per_stage(cls, value: list[Denoiser], info: ValidationInfo) -> list[Denoiser]:
        shared, stages = info.data.get("share_architecture"), info.data.get("stages")
        expected = 1 if shared else stages
        if expected is not None and len(value) != expected:
            what = "one denoiser (shared by every stage)" if shared else \
                f"a list of {expected} denoisers (stages)"
            raise ValueError(f"expected {what}, got {len(value)}")
        return value


def with_version_keys(arch: dict[str, Any], version: int) -> dict[str, Any]:
    """The arch with the keys of later versions at their old meaning; a key of a later
    version in an earlier genotype, or a missing key of its own version, is an error."""
    filled = dict(arch)
    for since, keys in VERSION_KEYS.items():
        for key in keys:
            if version < since:
                if key in arch:
                    raise ValueError(f"arch.{key}: unknown key (genotype version {version})")
                filled[key] = OLD_DEFAULTS[key]
            elif key not in arch:
                raise ValueError(f"arch.{key}: missing")
    return filled


def location(error: ValidationError) -> str:
    """`arch.denoisers[0].encoder[1].layers[0].op: message` of the first error (a
    denoiser's own validator names the rest of the path in its message)."""
    first = error.errors()[0]
    path = "arch" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}"
                            for part in first["loc"])
    message = {"missing": "missing", "extra_forbidden": "unknown key"}.get(
        first["type"], first["msg"].removeprefix("Value error, "))
    relative = first["type"] == "value_error" and len(first["loc"]) == 2 and \
        first["loc"][0] == "denoisers"
    return f"{path}.{message}" if relative else f"{path}: {message}"


def validate_arch(genotype: Genotype) -> Arch:
    """The typed arch of `genotype`; ValueError naming the field if it is malformed."""
    for name in genotype.primitives:
        if name not in OPS:
            raise ValueError(f"primitives: unknown op {name!r}")
    if not isinstance(genotype.arch, dict):
        raise ValueError("arch: expected an object")
    arch = with_version_keys(genotype.arch, genotype.version)
    try:
        frame = Frame.model_validate(arch)
        rules = Rules(frozenset(genotype.primitives), frame.width, frame.channel_multiple,
                      frame.depth_search, frame.levels, frame.stem == "fixed")
        return Arch.model_validate(arch, context={"rules": rules})
    except ValidationError as error:
        raise ValueError(location(error)) from None
