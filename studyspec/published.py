"""Values a paper publishes for an arm's row, shown beside what the study measured.

    published:
      - arm: hinas-lwas-resl
        source: "Zhang et al., Memory-Efficient Hierarchical NAS for Image Restoration
          (IJCV 2023), Table 1, row 'LWAS + ResL'"
        note: BSD500's test images, not BSD68      # the paper's protocol differs: marked
        values: {bsd68/sigma30/psnr: 30.17, params: 424669}

A value's key is a test metric of the study's tables (`<test set>/<level>/<psnr|ssim|
psnr_x8>`, the study's names) or a cost column (`params`, `gflops_per_mp`,
`search_gpu_hours`, `search_peak_mem_mib`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from studyspec.fields import MAX_LIST, Name, Strict

COST_KEYS = ("params", "gflops_per_mp", "search_gpu_hours", "search_peak_mem_mib")
METRIC_KEY = r"^[A-Za-z0-9_.=+-]+/[A-Za-z0-9_.=+-]+/(psnr|ssim|psnr_x8)$"
VALUE_KEY = rf"{METRIC_KEY}|^({'|'.join(COST_KEYS)})$"


class PublishedSpec(Strict):
    arm: Name  # the row's arm (a baseline's name for its row in every table)
    group: Name | None = None  # only in this group's table (default: wherever the arm is)
    stages: int | None = Field(None, ge=1, le=32)  # the retrain.stages row (T) it is for
    # the paper, named so that a reader finds it (authors, title, venue), table and row
    source: str = Field(min_length=3, max_length=1_000)
    # where the paper's protocol differs from the study's (test or training set, noise
    # draw, channel): the values are marked and the note printed under the table
    note: str | None = Field(None, min_length=1, max_length=1_000)
    values: dict[Annotated[str, Field(pattern=VALUE_KEY)],
                 Annotated[float, Field(ge=-1e12, le=1e12)]] = Field(min_length=1,
                                                                     max_length=MAX_LIST)
