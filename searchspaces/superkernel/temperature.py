"""The Gumbel-softmax / relaxed-Bernoulli temperature schedule of the superkernel
search (Mozejko et al. 2020, Sec. 4.5.1: the temperature tau is annealed).

The paper does not give the schedule (ours): the temperature decays
exponentially from `start` to `end` over the first `steps` training steps of
the search and stays at `end` afterwards. It is counted in steps, not epochs,
so that every study anneals alike whatever its epoch cap (`search.epochs` is an
upper bound that patience cuts short in `superkernel.yaml`). A study sets it as
`search_space.options.temperature: {start, end, steps}` (the space's own option);
the search logs it as `search/temperature`.
"""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from searchspaces.registry import SpaceOptions

# 10k steps: the whole search of studies/ablations.yaml (100 epochs x 100 steps), the
# first 10 of the 1k-step evaluations of studies/superkernel.yaml
DEFAULT_STEPS = 10_000


class TemperatureSchedule(SpaceOptions):
    start: float = Field(1.0, gt=0, le=100)  # temperature at step 0
    end: float = Field(0.1, gt=0, le=100)  # at step `steps` and after; at most `start`
    steps: int = Field(DEFAULT_STEPS, ge=1, le=10**9)  # steps of the decay, 1-1e9

    @field_validator("end")
    @classmethod
    def _cooling(cls, value: float, info: ValidationInfo) -> float:
        start = info.data.get("start")
        if start is not None and value > start:
            raise ValueError(f"must not exceed temperature.start ({start}), got {value}")
        return value

    def at(self, step: int) -> float:
        """start * (end / start) ** (step / steps), constant `end` from `steps` on."""
        progress = min(1.0, max(0, step) / self.steps)
        return self.start * (self.end / self.start) ** progress
