"""What every study model shares: the strict base, bounded field types, located errors.

Strict means that a study file's values are taken as YAML typed them: `"3"` is not a
number, `"yes"` is not a boolean, `3.0` is not an integer (an integer is a float);
NaN and infinities are refused everywhere. A YAML list is read as a tuple where
the model keeps one.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Strict(BaseModel):
    model_config = STRICT


def listed(value: Any) -> Any:
    """A YAML (or JSON) list where the model keeps a tuple; anything else as it is."""
    return tuple(value) if isinstance(value, list) else value


MAX_SEED = 2**32 - 1  # numpy's seeds
MAX_EPOCHS = 100_000
MAX_LIST = 1_000  # entries of a list a study enumerates (seeds, levels, choices, test sets)
MAX_STAGES = 32  # unfolded stages of a network (retrain.stages; MoD-NAS options.stages)
# a running training loss above this x its running minimum fails the trial (search and
# retrain.divergence_factor; trainables.loops.parts.DivergenceGuard)
DIVERGENCE = 100.0

Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Sigma = Annotated[float, Field(ge=0, le=255)]  # AWGN level on the 0-255 scale
Quality = Annotated[int, Field(ge=1, le=100)]  # JPEG quality (Pillow)
Name = Annotated[str, Field(min_length=1, max_length=1_000)]


def error_at(title: str, key: str, message: str) -> ValidationError:
    """An error of a check across fields, located at its own dotted `key` inside the model,
    so that a study file's message names the whole path (`tune.metric`, not `tune`)."""
    kind = PydanticCustomError("value_error", "{message}", {"message": message})
    loc = tuple(int(part) if part.isdigit() else part for part in key.split("."))
    return ValidationError.from_exception_data(
        title, [InitErrorDetails(type=kind, loc=loc, input=None)])


UNION_TAG = re.compile(r"^(constrained-)?(int|float|str|bool)$|^[\w-]+\[.*\]$")
TYPE_MISMATCH = re.compile(r"^(int|float|string|bool|list|dict|tuple|model|none)_type$|_parsing$")


def located(error: ValidationError) -> tuple[str, str, int]:
    """(dotted key, message, how many keys are wrong) of the error to show first.

    A union (`sigma: 25` or `sigma: [15, 25]`) reports one error per member, located
    through the member's tag; tags are dropped from the key, and the member whose
    complaint is not just "wrong type" is the one shown (a list's out-of-range entry
    rather than "not a number")."""
    entries = []
    for entry in error.errors():
        loc = [str(p) for p in entry["loc"] if not UNION_TAG.match(str(p))]
        entries.append((".".join(loc), entry))
    key, first = min(entries, key=lambda pair: bool(TYPE_MISMATCH.search(pair[1]["type"])))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "bool_type" and isinstance(first["input"], str):
        message = f"expected true or false, got {first['input']!r}"
    return key, message, len({key for key, _ in entries})
