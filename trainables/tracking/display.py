"""What a person sees of a trial run in MLflow: a name to scan and a few params.

Names: `<arm>/s<seed>/<phase>/<tuned values>/<arch hash prefix>`, e.g.
`default/s0/retrain/sl=.31,w=6/3fa2c1`, short enough for the runs table of the
MLflow UI (it cuts names at about 40 characters): dotted keys become the
initials of their last part (`ssim_lambda` -> `sl`), floats keep two digits.
A search run learns its architecture at its end and is renamed then; a retrain
run of an arm with several noise levels names its level (`retrain-sigma15`).

Params: the keys a person filters by (`FILTER_KEYS`) and those the driver
found to differ between the study's arms or to be tuned by Optuna
(`varying_keys`); the whole resolved study stays in the run's `config.json`. A
retrain run's `search_space.options.*` are the options of the network it
trained (`Study.retrain_options`: scaled, then overridden), the searched ones
as `searched.*` where they differ.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from searchspaces.genotype import Genotype
from studyspec.dotted import flatten
from studyspec.schema import NoiseSpec, Study

# dotted keys (and their sub-keys) every run logs
FILTER_KEYS = ("search_space.name", "search_space.options", "searched", "seed", "data.train",
               "data.test", "data.noise", "search.epochs", "retrain.epochs",
               "retrain.from", "retrain.noise_used",  # from: inherit = a distilled network
               "retrain.stages_used")
# sections that say how a study runs, not what a run trained: never params
NOT_PARAMS = ("name", "description", "profiles", "arms", "groups", "tracking", "tune",
              "resources")
HASH_CHARS = 6
NOISE_USED = "noise_used"  # retrain.noise_used: the degradation a retrain run trained at
STAGES_USED = "stages_used"  # retrain.stages_used: its unfolded stages (retrain.stages)
RENAME_TAG = "mlflow.runName"  # setting it renames the run (MLflow stores and servers alike)


def initials(part: str) -> str:
    """`ssim_lambda` -> `sl`, `width` -> `w`; names of up to 3 letters stay (`lr`)."""
    return part if len(part) <= 3 else "".join(word[0] for word in part.split("_") if word)


def short_key(key: str, parts: int = 1) -> str:
    """The initials of the last `parts` parts of a dotted key: `search.loss.ssim_lambda` ->
    `sl` (parts=2: `l.sl`)."""
    return ".".join(initials(part) or part for part in key.split(".")[-parts:])


def short_value(value: Any) -> str:
    """Two significant digits, no leading zero (`0.0123` -> `.012`, `1e-05` -> `1e-5`)."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value).replace(" ", "")
    mantissa, exponent, power = f"{value:.2g}".partition("e")
    text = mantissa + (f"e{int(power)}" if exponent else "")
    for zero, bare in (("0.", "."), ("-0.", "-.")):
        if text.startswith(zero):
            return bare + text[len(zero):]
    return text


def short_pairs(pairs: list[tuple[str, Any]], separator: str) -> str:
    """`k=v` with short keys; keys whose initials collide get their section's initials too
    (`wo.lr`, `ao.lr`), or else stay whole."""
    names = [short_key(key) for key, _ in pairs]
    for parts in (2, 0):
        twice = {name for name in names if names.count(name) > 1}
        names = [short_key(key, parts) if parts and name in twice else key if name in twice
                 else name for name, (key, _) in zip(names, pairs)]
    return separator.join(f"{name}={short_value(value)}"
                          for name, (_, value) in zip(names, pairs))


def short_tuned(tuned: Mapping[str, Any]) -> str:
    return short_pairs(sorted(tuned.items()), ",")


def short_arm(name: str) -> str:
    """A grid arm's `key=value` parts with short keys
    (`superkernel=joint+num_subnets=3` -> `s=joint+ns=3`); other names as they are."""
    parts = [part.partition("=") for part in name.split("+")]
    if not any(equals for _, equals, _ in parts):
        return name
    return "+".join(short_pairs([(key, value)], "") if equals else key
                    for key, equals, value in parts)


def noise_label(noise: Mapping[str, Any]) -> str:
    """`sigma25`, `q10`, or for a blind range `sigma0-55`."""
    spec = NoiseSpec.model_validate(noise)
    if spec.sigma_range is not None:
        return f"sigma{spec.sigma_range[0]:g}-{spec.sigma_range[1]:g}"
    return ",".join(spec.test_keys())


def run_name(config: Mapping[str, Any], phase: str, study: Mapping[str, Any],
             arch_hash: str | None = None) -> str:
    """The trial run's name; a retrain config's genotype gives the arch hash."""
    if arch_hash is None and "candidate" in config:
        arch_hash = Genotype.from_json(config["candidate"]["genotype"], "genotype").arch_hash()
    label = phase
    if phase == "retrain" and len(study.get("retrain", {}).get("noise") or ()) > 1:
        label = f"{phase}-{noise_label(config['noise'])}"
    if phase == "retrain" and config.get("stages") is not None:
        label = f"{label}-T{config['stages']}"  # retrain.stages
    seed = f"s{config['seed']}" if config.get("seed") is not None else ""
    parts = [short_arm(str(config["arm"])), seed, label,
             short_tuned(config.get("tuned", {})), (arch_hash or "")[:HASH_CHARS]]
    return "/".join(part for part in parts if part)


def with_arch(name: str, arch_hash: str) -> str:
    """`name` ending in the arch hash prefix (a search run's name, once it has derived)."""
    suffix = f"/{arch_hash[:HASH_CHARS]}"
    return name if name.endswith(suffix) else name + suffix


def run_part(study: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in study.items() if key not in NOT_PARAMS}


def varying_keys(studies: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """Dotted keys whose values differ between the arms' studies, then every key Optuna
    tunes in any arm: with FILTER_KEYS, what the study's runs log as params."""
    studies = list(studies)
    flats = [{key: json.dumps(value, sort_keys=True, default=str)
              for key, value in flatten(run_part(study))} for study in studies]
    keys = dict.fromkeys(key for flat in flats for key in flat)
    differ = [key for key in keys if len({flat.get(key) for flat in flats}) > 1]
    tuned = [key for study in studies for key in study.get("tune", {}).get("space", {})]
    return tuple(dict.fromkeys([*differ, *tuned]))


def selected(key: str, wanted: Iterable[str]) -> bool:
    return any(key == prefix or key.startswith(prefix + ".") for prefix in wanted)


def logged_params(study: Mapping[str, Any], phase: str, keys: Iterable[str] = ()
                  ) -> dict[str, Any]:
    """The flat params a run of `phase` logs of its resolved `study` (a retrain run's study
    also holds `retrain.noise_used`, and `retrain.stages_used` with retrain.stages)."""
    tree = trained_study(study) if phase == "retrain" else run_part(study)
    wanted = (*FILTER_KEYS, *keys)
    return {key: value for key, value in flatten(tree)  # no empty sections, no unset values
            if selected(key, wanted) and value is not None and not isinstance(value, Mapping)}


def trained_study(study: Mapping[str, Any]) -> dict[str, Any]:
    """`study` with `search_space.options` those of the retrained network (the options the
    study names, scaled or overridden ones included) and `searched` the searched values
    that differ from them."""
    retrain = {key: value for key, value in study["retrain"].items()
               if key not in (NOISE_USED, STAGES_USED)}
    parsed = Study.model_validate({**study, "retrain": retrain})
    named = [*study["search_space"].get("options", {}), *parsed.retrain.scale_options,
             *parsed.retrain.space_options]
    trained, searched = parsed.retrain_options(), parsed.search_space.resolved_options()
    options = {key: trained[key] for key in dict.fromkeys(named) if key in trained}
    tree = run_part(study)
    tree["search_space"] = {**tree["search_space"], "options": options}
    tree["searched"] = {key: searched.get(key) for key in options
                        if searched.get(key) != options[key]}
    return tree
