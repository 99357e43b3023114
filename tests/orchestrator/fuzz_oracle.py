"""The fuzz test's own verdict on a study value: a table per key family, written by hand.

Bounds, types and choices are those the documents state: docs/studies.md,
docs/search-spaces.md, the papers, and the key reference
docs/study-keys.md as it read when this table was written (it is generated from the
schema, so each entry was copied by hand and checked against the papers; a later change
of the schema does not change this table). Where the documents are silent, a comment says
what a researcher would expect and why. Nothing here imports `studyspec`, a search space
or pydantic: a bound widened or a type loosened in the schema is still refused here, and
the fuzz test (`study_mutations.py`) then sees the loader accept a case this table refuses.

Keys are dotted study keys; `*` stands for a name of the author's choosing, `[]` for an
entry of a list (the entries of a list-valued key follow its `items` rule).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

MAX_SEED = 2**32 - 1  # numpy's seeds (study-keys.md: seed <= 4294967295)
MAX_EPOCHS = 100_000  # study-keys.md: every epoch count <= 100000
RAY_UNIT = 1e-4  # study-keys.md: resources "0, or a share of at least 0.0001"


@dataclass(frozen=True)
class Rule:
    """What one key takes. A value is refused unless one of the kinds below takes it."""

    number: str | None = None  # "int", or "float" (which takes YAML integers too)
    low: float | None = None
    high: float | None = None
    open_low: bool = False  # `low` itself is refused (lr > 0)
    open_high: bool = False
    gap: tuple[float, float] | None = None  # refused strictly between (GPU shares)
    odd: bool = False  # an odd integer (a kernel with a centre)
    boolean: bool = False  # a YAML true / false, never "yes", 1 or "true"
    choices: tuple[str, ...] = ()  # a closed set of names, case as documented
    text: Callable[[str], bool] | None = None  # free text, and what it must satisfy
    items: Rule | None = None  # a YAML list of these is taken
    min_items: int = 0
    max_items: int | None = None
    nullable: bool = False  # null is taken (the documented default "None: ...")
    section: bool = False  # a mapping is taken (its own keys are checked as keys)
    # the limits are documented, and accepted themselves: both, "low" or "high" only, none
    exact: bool | str = True
    # the settings the limits need beside them: a dict, or a function of the limit
    context: dict[str, Any] | Callable[[Any], dict[str, Any]] = field(default_factory=dict)
    space: str = "hinas"  # the minimal study (`fuzz_cases.MINIMAL`) the limits are tried in
    also_named: tuple[str, ...] = ()  # keys a refusal may name instead, as the docs say


def Int(low=None, high=None, **more) -> Rule:
    return Rule(number="int", low=low, high=high, **more)


def Float(low=None, high=None, **more) -> Rule:
    return Rule(number="float", low=low, high=high, **more)


def Choice(*names: str, **more) -> Rule:
    return Rule(choices=names, text=lambda value: value in names, **more)


def Text(min_length: int = 0, **more) -> Rule:
    return Rule(text=lambda value: len(value) >= min_length, **more)


def ListOf(item: Rule, min_items: int = 1, **more) -> Rule:
    return Rule(items=item, min_items=min_items, **more)


def listed(rule: Rule, min_items: int = 1) -> Rule:
    """A number or a list of such numbers (sigma: 25 or [30, 50, 70])."""
    return replace(rule, items=replace(rule, nullable=False), min_items=min_items)


BOOL = Rule(boolean=True)
# docs/studies.md: the named datasets; a name containing "/" is a folder path
DATASETS = ("train400", "set12", "bsd68", "cbsd68", "urban100", "live1", "classic5", "embedded")
DATASET = Rule(text=lambda value: value in DATASETS or "/" in value)
# study-keys.md, retrain.test_keys: "e.g. [sigma15, q10] (sigma 0-255, quality 1-100)"
TEST_KEY = Rule(text=lambda value: bool(
    (m := re.fullmatch(r"sigma(\d+(?:\.\d+)?)", value)) and float(m[1]) <= 255 or
    (m := re.fullmatch(r"q(\d+)", value)) and 1 <= int(m[1]) <= 100))
# docs/studies.md: the metrics a phase reports (tune.metric's choices)
METRICS = ("val/psnr", "val/ssim", "val/score", "train/loss", "cost/params",
           "cost/gflops_per_mp", "cost/latency_ms_per_mp", "cost/peak_mem_mib")
SEED = Int(0, MAX_SEED)
SIGMA = Float(0, 255)  # noisy = clean + N(0, (sigma / 255)^2); blind [0, 55]
QUALITY = Int(1, 100)  # JPEG quality (Pillow's scale)


def optimizer(prefix: str) -> dict[str, Rule]:
    """The papers' optimisers: SGD or Adam, cosine / poly / constant (HiNAS code: poly_cosine)."""
    return {
        f"{prefix}.name": Choice("sgd", "adam"),
        f"{prefix}.lr": Float(0, 1000, open_low=True, context={f"{prefix}.lr_min": 0.0}),
        f"{prefix}.lr_min": Float(0, 1000, context={f"{prefix}.lr": 1000.0}),  # <= lr
        f"{prefix}.schedule": Choice("cosine", "poly", "constant", "poly_cosine"),
        f"{prefix}.power": Float(0, 10, open_low=True),  # (1 - progress) ** power
        # a period of epochs: at least one (the docs: "int or null", None: 10)
        f"{prefix}.period_epochs": Int(1, MAX_EPOCHS, nullable=True,
                                       context={f"{prefix}.schedule": "poly_cosine"}),
        f"{prefix}.momentum": Float(0, 1, open_high=True),
        f"{prefix}.betas": ListOf(Float(0, 1, open_high=True), 2, max_items=2, exact=False),
        f"{prefix}.weight_decay": Float(0, 1),
        f"{prefix}.warmup_steps": Int(0, 10**7),
        f"{prefix}.bias.weight_decay": Float(0, 1),
        f"{prefix}.bias.lr_factor": Float(0, 1000, open_low=True),
    }


def loss(prefix: str) -> dict[str, Rule]:
    """HiNAS Eq. 7: MSE + lambda log10(1 / SSIM)."""
    return {f"{prefix}.ssim_lambda": Float(0, 100), f"{prefix}.average_terms": BOOL,
            f"{prefix}.ssim_padding": Choice("valid", "same")}


def noise(prefix: str) -> dict[str, Rule]:
    """The papers' degradations: AWGN at a sigma (fixed, drawn from a list, or blind) or
    JPEG at a quality."""
    jpeg = {prefix: {"type": "jpeg", "quality": 10}}
    return {f"{prefix}.type": Choice("awgn", "jpeg",
                                     context=lambda kind: jpeg if kind == "jpeg" else {}),
            f"{prefix}.sigma": listed(replace(SIGMA, nullable=True)),
            # blind: [low, high] (blind denoising: [0, 55]); one level at each end is taken
            f"{prefix}.sigma_range": ListOf(SIGMA, 2, max_items=2, nullable=True, exact=False),
            f"{prefix}.quality": listed(replace(QUALITY, nullable=True, context=jpeg))}


def resources(prefix: str) -> dict[str, Rule]:
    return {f"{prefix}.cpu": Float(RAY_UNIT, 4096),
            f"{prefix}.gpu": Float(0, 256, gap=(0, RAY_UNIT))}


STUDY: dict[str, Rule] = {
    "name": Text(1),  # the MLflow experiment and folder names: an empty name names nothing
    "description": Text(),
    "seed": SEED,
    # studies.md: "every seed of every arm"; an empty list would run nothing
    "seeds": ListOf(SEED, 1, nullable=True),
    "precision": Choice("fp32", "bf16", "fp16"),
    "data.val_fraction": Float(0, 0.5),
    "data.split": Choice("random", "stratified", context=lambda split: {
        "data.group_pattern": "^(.)"} if split == "stratified" else {}),  # a label to keep
    "data.group_pattern": Text(nullable=True),
    "data.train": DATASET,
    "data.test": ListOf(DATASET, 1),  # "test sets (at least one)"
    "data.root": Text(1, nullable=True),
    "data.color": BOOL,
    # 1024 needs training images that large (the embedded ones are smaller): 8 is tried
    "data.patch_size": Int(8, 1024, exact="low"),
    "data.augment": BOOL,
    # true: [0.8, 1.2] (the random rescale); a factor is positive, at most 10 (study-keys.md)
    "data.rescale": Rule(boolean=True, items=Float(0, 10, open_low=True), min_items=2,
                         max_items=2),
    **noise("data.noise"),
    # the split: V takes at least one image and the rest is halved into W and A: three
    # images at least; no upper limit is documented (none is tried)
    "data.max_train_images": Int(3, nullable=True),
    "search_space.name": Choice("dncnn", "hinas", "modnas", "superkernel", exact=False),
    "search_space.module": Text(nullable=True),
    "search.strategy": Choice("bilevel", "joint", "rsws", nullable=True),
    "search.rsws.samples": Int(1, 10_000),  # HiNAS Table 1: N = 30
    "search.epochs": Int(1, MAX_EPOCHS, context={"search.warmup_epochs": 0,
                                                  "search.validate_from_epoch": 0}),
    "search.epoch": Choice("steps", "images"),
    # an epoch of no step is none; studies.md: with `search.epoch: images` any steps_per_epoch
    # "is one line naming search.epoch"
    "search.steps_per_epoch": Int(1, nullable=True, also_named=("search.epoch",)),
    "search.batch_size": Int(1, 4096),
    # below search.epochs where the space searches (studies.md): the upper limit is not
    # reachable in a searching study, so the limits are not tried
    "search.warmup_epochs": Int(0, MAX_EPOCHS, exact=False),
    "search.validate_from_epoch": Int(0, MAX_EPOCHS, exact=False),  # < epochs likewise
    "search.patience": Int(1, nullable=True),  # studies.md: "search.patience below 1" refused
    "search.eval_every": Int(1, nullable=True),  # steps between validations: at least one
    "search.select_by": Choice("score", "psnr"),
    **optimizer("search.weight_optimizer"),
    **optimizer("search.arch_optimizer"),
    **loss("search.loss"),
    # a norm to clip to is positive (0 would zero every step); no documented upper limit
    "search.grad_clip_norm": Float(0, open_low=True, nullable=True, exact=False),
    # running mean above factor x running minimum: a factor <= 1 fails at the first step
    "search.divergence_factor": Float(1, open_low=True, nullable=True, exact=False),
    # a centre crop of at least one pixel (no documented minimum: the limit is not tried)
    "search.val_crop": Int(1, nullable=True, exact=False),
    "search.monitor": ListOf(DATASET, 1, nullable=True),
    "search.monitor_crop": Int(1, nullable=True, exact=False),
    "search.num_workers": Int(0, 64),
    # inherit: only a space that can (superkernel, studies.md)
    "retrain.from": Choice("inherit", "scratch", nullable=True, space="superkernel"),
    # 0: tested as distilled, only when the network inherits (studies.md)
    "retrain.epochs": Int(0, MAX_EPOCHS, space="superkernel"),
    "retrain.steps_per_epoch": Int(1, 10**7),
    "retrain.batch_size": Int(1, 4096),
    **optimizer("retrain.optimizer"),
    **loss("retrain.loss"),
    "retrain.grad_clip_value": Float(0, open_low=True, nullable=True, exact=False),
    "retrain.divergence_factor": Float(1, open_low=True, nullable=True, exact=False),
    "retrain.select": Choice("last", "best_v_last_quarter"),
    "retrain.scale_options.*": Float(0, 1000, open_low=True, exact=False),  # width x factor
    "retrain.noise": ListOf(Rule(section=True), 1, nullable=True),
    **noise("retrain.noise.[]"),
    "retrain.test_keys": ListOf(TEST_KEY, 1, nullable=True, exact=False),
    "retrain.self_ensemble": BOOL,
    "retrain.cost.input_size": Int(8, 8192),
    "retrain.cost.repeats": Int(1, 1000),
    # MoD-NAS Table 2: T = 1, 3, 6 from one search; at most 32 stages (study-keys.md)
    "retrain.stages": ListOf(Int(1, 32), 1, nullable=True, space="modnas"),
    "retrain.num_workers": Int(0, 64),
    "tune.num_samples": Int(1, 100_000),
    "tune.sampler_seed": SEED,
    "tune.objective": Choice("retrained", "supernet"),
    # "default: val/psnr (retrained) or val/score (supernet)"; a cost/ metric is not reported
    # by the supernet phase, so only the retrained phase's names are tried as limits
    "tune.metric": Rule(text=lambda value: value in METRICS, nullable=True, exact=False),
    "tune.mode": Choice("max", "min"),
    "tune.max_concurrent": Int(1, 100_000),
    "tune.max_failures": Int(0, 100),
    "tune.scheduler.type": Choice("asha"),
    "tune.scheduler.grace_period": Int(1, MAX_EPOCHS, context={"search.epochs": MAX_EPOCHS}),
    "tune.scheduler.reduction_factor": Float(1, 100, open_low=True),  # ASHA keeps 1/factor
    **resources("resources.search"),
    **resources("resources.retrain"),
    "arms.group": Text(nullable=True),
    "arms.named.[].name": Text(1),
    "arms.named.[].group": Text(nullable=True),
    "arms.named.[].seeds": ListOf(SEED, 1, nullable=True),
    "arms.named.[].genotype": Text(1, nullable=True),
    "arms.named.[].retrain": BOOL,
    "baselines.[]": Choice("dncnn", section=True),  # dncnn | {name, weights, set}
    "baselines.[].name": Choice("dncnn"),
    "groups.*.title": Text(),
    "tracking.uri": Text(nullable=True),
    "tracking.experiment": Text(nullable=True),
}

# docs/study-keys.md's options tables (their comments state the lower limits the type
# column leaves out: "L, 1-32 layers") and docs/search-spaces.md
HINAS_OPS = ("conv_3x3", "sep_3x3", "sep_5x5", "dil_3x3", "dil_5x5", "def_3x3", "skip", "none")
CODE_OR_PAPER = Choice("code", "paper", nullable=True)
OPTIONS: dict[str, dict[str, Rule]] = {
    "dncnn": {},
    "hinas": {
        "num_layers": Int(1, 32),
        "num_nodes": Int(1, 16),
        "width": Int(1, 1024),
        # "ascending in (0, 16], at most 8 levels": one level at least
        "width_multipliers": ListOf(Float(0, 16, open_low=True), 1, max_items=8, exact=False),
        "stem_channels": Int(1, 4096),
        "layerwise_alphas": BOOL, "cell_sharing": BOOL, "residual": BOOL,
        "activation": Choice("leaky_relu", "relu"),
        "primitives": ListOf(Choice(*HINAS_OPS), 1, exact=False),  # a mixed op of no op: none
        "variant": Choice("code", "paper"),
        **dict.fromkeys(("stem", "two_back", "projection", "decoder", "supernet_head",
                         "supernet_output"), CODE_OR_PAPER),
        # one width per layer (Table 3: [40, 40, 40]); the count must match num_layers
        "layer_widths": ListOf(Int(1, 4096), 1, nullable=True, exact=False),
    },
    "modnas": {
        "unfolding": BOOL,
        "stages": Int(1, 32),  # T (paper: 1, 3, 6)
        "depth_search": Choice("dense", "skip_op"),
        # U-net levels (4, as DPDNN); a patch must halve levels - 1 times (not tried at 10)
        "levels": Int(1, 10, exact=False),
        "width": Int(1, 4096, context={"search_space.options.channel_multiple": 1}),
        "rho": Float(0, 1, open_low=True),  # the kept fraction of a layer's gate mass
        "channel_multiple": Int(1, 4096, exact=False),  # at most the width
        "candidates": Choice("paper", "extended"),
        "normal_ops": ListOf(Text(1), 1, nullable=True, exact=False),
        "down_ops": ListOf(Text(1), 1, nullable=True, exact=False),
        "up_ops": ListOf(Text(1), 1, nullable=True, exact=False),
        "skip_join": Choice("concat", "concat1x1", "add"),
        "stem": Choice("fixed", "searched"),
        "stem_channels": Int(1, nullable=True, exact=False),
        "share_architecture": BOOL, "full_width": BOOL,
        "width_penalty": Float(0, 10),
        "width_regularizer": Choice("l1", "hoyer"),
    },
    "superkernel": {
        "backbone": Choice("resunet", "attention_unet"),
        "superkernel": Choice("joint", "factorized", "filterwise", "filterwise_attention",
                              "none"),
        "mode": Choice("full", "separate"),
        "layout": Choice("paper", "compact"),
        "activation": Choice("relu", "prelu"),
        # odd kernel sizes (a centred window: Superkernel NAS's k in {3, 5, 7}), at most 8
        "kernel_sizes": ListOf(Int(1, odd=True, exact=False), 1, max_items=8, exact=False),
        "growth_rates": ListOf(Float(0, 1, open_low=True), 1, max_items=8, exact=False),
        # 8 halvings need patches of 256 px, larger than the smallest embedded image: 1 is tried
        "depth": Int(1, 8, exact="low"),
        "width": Int(1, 1024),
        "blocks_per_level": Int(1, 16),
        "num_subnets": Int(1, 16),
        "temperature.start": Float(0, 100, open_low=True, context=lambda start: {
            "search_space.options.temperature.end": start}),  # end <= start
        "temperature.end": Float(0, 100, open_low=True, context={
            "search_space.options.temperature.start": 100.0}),
        "temperature.steps": Int(1, 10**9),
        "key_dim": Int(2, 256),
        "skipinit_scale": Float(-10, 10),
        "fixed_kernel_size": Int(1, odd=True, nullable=True, exact=False),
        "fixed_growth": Float(0, 1, open_low=True, nullable=True, exact=False),
    },
}
OPTION_PREFIXES = ("search_space.options", "retrain.space_options")
# tune.space: dotted study key -> an Optuna distribution (docs/studies.md); a choice is a
# value of its key (checked as that key), and a categorical of no choice cannot be sampled
ANY = Rule(number="float", boolean=True, text=lambda value: True, nullable=True, section=True)
DISTRIBUTION = {"type": Choice("int", "float", "categorical"),
                "low": Float(nullable=True, exact=False), "high": Float(nullable=True, exact=False),
                "log": BOOL, "step": Float(nullable=True, exact=False),
                "choices": ListOf(ANY, 1, nullable=True, exact=False)}


def in_bounds(rule: Rule, value: float) -> bool:
    if rule.low is not None and (value < rule.low or rule.open_low and value == rule.low):
        return False
    if rule.high is not None and (value > rule.high or rule.open_high and value == rule.high):
        return False
    if rule.odd and value % 2 != 1:
        return False
    return not (rule.gap and rule.gap[0] < value < rule.gap[1])


def accepts(rule: Rule, value: Any, kind_only: bool = False) -> bool:
    """The table's verdict on `value` (`kind_only`: its YAML type alone, not its bounds,
    list length or name)."""
    if value is None:
        return rule.nullable
    if isinstance(value, bool):
        return rule.boolean
    if isinstance(value, (int, float)):
        whole = isinstance(value, int) or rule.number == "float"
        return rule.number is not None and whole and (kind_only or math.isfinite(value) and
                                                      in_bounds(rule, value))
    if isinstance(value, str):
        return rule.text is not None and (kind_only or rule.text(value))
    if isinstance(value, list):
        sized = rule.min_items <= len(value) <= (rule.max_items or math.inf)
        return rule.items is not None and (kind_only or sized) and \
            all(accepts(rule.items, item, kind_only) for item in value)
    return isinstance(value, dict) and rule.section


def rule_for(key: str, space: str) -> Rule | None:
    """The rule of a dotted key (list entries as `[]`), options those of `space`."""
    for prefix in OPTION_PREFIXES:
        if key.startswith(prefix + "."):
            return option_rule(key.removeprefix(prefix + "."), space)
    if key in STUDY:
        return STUDY[key]
    if key.startswith("tune.space.") and key.count(".") >= 3:
        return DISTRIBUTION.get(key.rpartition(".")[2])
    for pattern, rule in STUDY.items():
        if "*" in pattern and re.fullmatch(re.escape(pattern).replace(r"\*", r"[^.]+"), key):
            return rule
    head, _, last = key.rpartition(".")
    parent = rule_for(head, space) if last == "[]" else None
    return parent.items if parent is not None else None


def option_rule(key: str, space: str) -> Rule | None:
    head, _, last = key.rpartition(".")
    if last == "[]":
        parent = OPTIONS.get(space, {}).get(head)
        return parent.items if parent is not None else None
    return OPTIONS.get(space, {}).get(key)
