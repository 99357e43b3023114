"""How a study splits its training images into Train-W / Train-A / Validation-V
(`trainables.data.splits`): the share of V and, for a stratified split, the regex that reads
each image's group label from its file name (Superkernel NAS Sec. 5.1: 90/10, stratified
by phone type)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from studyspec.fields import Strict, error_at


class SplitSpec(Strict):
    """The split fields of `data` (DataSpec derives from this)."""

    # Validation-V share of the training images: at most half (the rest trains)
    val_fraction: float = Field(0.02, ge=0, le=0.5)
    # random; or stratified: V holds each group's share (every group of >= 2 images gives one)
    split: Literal["random", "stratified"] = "random"
    # with split: stratified, a regex searched in each file stem whose first group is the label,
    # e.g. SIDD scene ids '^(\d{4})_'; a name it does not match stops the study
    group_pattern: str | None = Field(None, min_length=1, max_length=1_000)

    @model_validator(mode="after")
    def _pattern_for_stratified(self) -> SplitSpec:
        if self.split == "stratified" and self.group_pattern is None:
            raise error_at("SplitSpec", "group_pattern", "data.split: stratified needs a regex "
                           "whose first group is the image's label, e.g. '^(\\d{4})_'")
        if self.split == "random" and self.group_pattern is not None:
            raise error_at("SplitSpec", "group_pattern",
                           "only read with data.split: stratified (the split is random)")
        if self.group_pattern is not None:
            try:
                groups = re.compile(self.group_pattern).groups
            except re.error as error:
                raise error_at("SplitSpec", "group_pattern", f"not a regex: {error}") from None
            if groups < 1:
                raise error_at("SplitSpec", "group_pattern", "no group: put the label in "
                               "parentheses, e.g. '^(\\d{4})_'")
        return self
