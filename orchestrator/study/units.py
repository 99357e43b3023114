"""Trial configs of a study's units: what a search or retrain trial is told, as plain dicts.

A unit is one (arm, seed) or, for a tuned arm, one (arm, Optuna sample, seed).
Its search trial config names the arm, seed and tuned values; each retrain trial
config adds the genotype, the search run it came from and a degradation. The
`labels` of a config become tags of the trial's MLflow run (the tables group by
them) and `dedup_key` identifies retrain work that two units would repeat.

With an `identity` (the code's commit, package set, data manifests and evaluation protocol
of the arm: `orchestrator.run.cache`), a search config's `cache_key` and a retrain config's
`dedup_key` name their work across studies too: a later study finds the finished run
by it and does not run the unit again. The in-study dedup is the same key.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from orchestrator.study.plan import ArmPlan
from searchspaces.genotype import Genotype
from studyspec.dotted import with_overrides

SEARCH, RETRAIN = "search", "retrain"


def tuned_label(tuned: dict[str, Any]) -> str:
    """`ssim_lambda=0.312,width=6`: the last part of each dotted key, short values."""
    def short(value: Any) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value).replace(" ", "")

    return ",".join(f"{key.split('.')[-1]}={short(value)}" for key, value in sorted(tuned.items()))


def unit_key(arm: ArmPlan, sample: int, seed: int) -> str:
    return f"{arm.name}/t{sample}/s{seed}" if arm.tuned else f"{arm.name}/s{seed}"


def sample_key(arm: ArmPlan, sample: int) -> str:
    return f"{arm.name}/t{sample}" if arm.tuned else arm.name


def search_config(arm: ArmPlan, sample: int, seed: int, tuned: dict[str, Any],
                  identity: dict[str, Any] | None = None) -> dict[str, Any]:
    unit = unit_key(arm, sample, seed)
    labels = {"group": arm.group, "arm_index": arm.index, "seed": seed, "unit": unit,
              "tuned": tuned_label(tuned), **({"baseline": "true"} if arm.baseline else {})}
    config = {"phase": SEARCH, "arm": arm.name, "seed": seed, "unit": unit,
              "sample": sample_key(arm, sample), "tuned": dict(tuned), "labels": labels}
    if identity and arm.genotype is None:
        config["cache_key"] = search_key(arm, config, identity)
    return config


def search_key(arm: ArmPlan, config: dict[str, Any], identity: dict[str, Any]) -> str:
    """What a search computes: its seed, the resolved search, data (not where the data
    lies: its manifest is in `identity`), space and precision sections, and the code."""
    study = with_overrides(arm.plain_study(), config["tuned"])
    data = {key: value for key, value in study["data"].items() if key != "root"}
    work = {"phase": SEARCH, "seed": config["seed"], "search": study["search"], "data": data,
            "options": study["search_space"], "precision": study["precision"], **identity}
    return digest(work)


def digest(work: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(work, sort_keys=True).encode()).hexdigest()[:16]


def retrain_configs(arm: ArmPlan, search: dict[str, Any], genotype: str,
                    source_run: str, identity: dict[str, Any] | None = None
                    ) -> list[dict[str, Any]]:
    """One retrain config per degradation of the arm, from a finished search config, and
    per stage count of `retrain.stages` (`stages` in the config and its labels: the
    genotype's network unrolled to that many stages, MoD-NAS Table 2)."""
    arch_hash = Genotype.from_json(genotype, "searched genotype").arch_hash()
    configs = []
    for noise in arm.noises:
        for stages in arm.study.retrain.stages or [None]:
            config = {**search, "phase": RETRAIN, "noise": noise.model_dump(mode="json"),
                      "candidate": {"genotype": genotype, "source": source_run}}
            config.pop("cache_key", None)  # the search's: the retrain's own is its dedup key
            if search.get("cache_key"):
                config["search_key"] = search["cache_key"]
            if stages is not None:
                config |= {"stages": stages, "labels": {**search["labels"], "stages": stages}}
            config["dedup_key"] = dedup_key(arm, config, arch_hash, identity or {})
            if identity:
                config["cache_key"] = config["dedup_key"]
            configs.append(config)
    return configs


def dedup_key(arm: ArmPlan, config: dict[str, Any], arch_hash: str,
              identity: dict[str, Any] | None = None) -> str:
    """Same architecture, same resolved retraining (data, options, retrain section,
    precision, degradation) and seed: the same work, whichever arm asks for it (and, with
    the code's `identity`, whichever study). A network that inherits its supernet's weights
    is also its search's own work (the search's key, else its run)."""
    study = with_overrides(arm.plain_study(), {**config["tuned"], **config.get("overrides", {})})
    start = config["tuned"].get("retrain.from") or arm.study.retrain_start()  # tuned or the arm's
    inherits = start == "inherit" and not arm.weights
    work = {"arch": arch_hash, "seed": config["seed"], "noise": config["noise"],
            **({"stages": config["stages"]} if "stages" in config else {}),
            "retrain": study["retrain"], "options": study["search_space"],
            "data": {k: v for k, v in study["data"].items() if not (identity and k == "root")},
            "precision": study["precision"],
            **({"weights": arm.weights} if arm.weights else {}),  # evaluated, not trained
            **({"inherits_from": config.get("search_key") or config["candidate"]["source"]}
               if inherits else {}), **(identity or {})}
    return digest(work)


def proxy_configs(arm: ArmPlan, configs: list[dict[str, Any]],
                  identity: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The short retrainings of `configs` (`retrain.proxy`: one epoch of `steps` steps),
    labelled `proxy: short`, their own dedup (and cache) keys."""
    steps = arm.study.retrain.proxy.steps
    short = []
    for config in configs:
        proxy = {**config, "overrides": {"retrain.epochs": 1, "retrain.steps_per_epoch": steps},
                 "labels": {**config["labels"], "proxy": "short", "retrain_steps": steps}}
        arch_hash = Genotype.from_json(config["candidate"]["genotype"]).arch_hash()
        proxy["dedup_key"] = dedup_key(arm, proxy, arch_hash, identity or {})
        if identity:
            proxy["cache_key"] = proxy["dedup_key"]
        short.append(proxy)
    return short

