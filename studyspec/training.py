"""Training settings of a study: optimizers (with their learning-rate schedules and bias
groups) and the loss, shared by `search` and `retrain` (Zhang et al., IJCV 2022, Eq. 7; HiNAS code:
`one_stage_nas/solver/`, `modeling/loss.py`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from studyspec.fields import MAX_EPOCHS, Strict, error_at, listed

Beta = Annotated[float, Field(ge=0, lt=1)]


class BiasSpec(Strict):
    """Biases as a group of their own (HiNAS code, solver/build.py: retraining decays the
    other weights by 4e-5 and gives biases no decay and twice the lr)."""

    weight_decay: float = Field(0.0, ge=0, le=1)
    lr_factor: float = Field(2.0, gt=0, le=1000)


class OptimizerSpec(Strict):
    name: Literal["sgd", "adam"] = "adam"
    lr: float = Field(1e-3, gt=0, le=1000)
    lr_min: float = Field(0.0, ge=0, le=1000)  # end of the cosine / poly schedule (<= lr)
    # poly_cosine: the HiNAS code's search schedule, a cosine of period_epochs times a
    # poly(power) decay, per epoch (trainables.loops.optim)
    schedule: Literal["cosine", "poly", "constant", "poly_cosine"] = "cosine"
    power: float = Field(0.9, gt=0, le=10)  # poly and poly_cosine: (1 - progress) ** power
    # poly_cosine: epochs from lr down to lr_min (the code's T_MAX; None: 10); back up in as many
    period_epochs: int | None = Field(None, ge=1, le=MAX_EPOCHS)
    momentum: float = Field(0.9, ge=0, lt=1)  # SGD only
    betas: Annotated[tuple[Beta, Beta], BeforeValidator(listed)] = (0.9, 0.999)  # Adam only
    weight_decay: float = Field(0.0, ge=0, le=1)
    # a linear warm-up: the schedule's lr times (step + 1) / warmup_steps for the first steps
    warmup_steps: int = Field(0, ge=0, le=10**7)
    bias: BiasSpec | None = None  # None: biases in the one group, as every other weight

    @model_validator(mode="after")
    def _decays_downwards(self) -> OptimizerSpec:
        if self.lr_min > self.lr:
            raise error_at("OptimizerSpec", "lr_min",
                           f"{self.lr_min:g} is above the learning rate lr {self.lr:g}")
        if self.period_epochs is not None and self.schedule != "poly_cosine":
            raise error_at("OptimizerSpec", "period_epochs", "only schedule: poly_cosine has "
                           f"a period (this optimizer's schedule is {self.schedule})")
        return self


class LossSpec(Strict):
    """HiNAS Eq. 7: MSE + lambda * log10(1 / SSIM)."""

    ssim_lambda: float = Field(0.0, ge=0, le=100)
    # the HiNAS code divides the sum by 2 (its two listed terms; at lambda 0: MSE / 2, and
    # MSE itself with the SSIM term left out: false), trainables.loops.losses
    average_terms: bool = False
    # "same": the SSIM map over the whole image, the window zero-padded at the borders (the
    # HiNAS code's log_SSIM_loss); "valid": where the 11x11 window fits (Wang et al.)
    ssim_padding: Literal["valid", "same"] = "valid"


class CostSpec(Strict):
    """How the retrained network's cost/ metrics are measured after its last epoch: one
    forward pass on a (1, C, input_size, input_size) input for the FLOPs and the peak memory,
    and the median of `repeats` timed passes (after two untimed) for the latency. FLOPs and
    latency are reported per megapixel; the peak memory is that of this input."""

    # side in pixels of the square input (FLOPs and latency per megapixel; memory at this size)
    input_size: int = Field(256, ge=8, le=8192)
    repeats: int = Field(5, ge=1, le=1000)  # timed passes (after two untimed): latency median


class ProxySpec(Strict):
    """Two-stage retraining of a tuned arm's candidates (its Optuna samples x seeds): each is
    first retrained for `steps` steps (one epoch, the arm's retraining otherwise); the `keep`
    best by their validation score then get the full retraining. Optuna is told the proxy
    score (every sample needs a value before the next is drawn)."""

    steps: int = Field(ge=1, le=10**7)
    keep: int = Field(ge=1, le=10**4)
