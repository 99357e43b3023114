"""The description of a study's parent run in the MLflow UI (its `mlflow.note.content` tag,
markdown): what the study is, its file, arms and groups, and where its tables and configs
are."""

from __future__ import annotations

from orchestrator.study import ArmPlan
from studyspec.schema import Study
from trainables.tracking import FILTER_KEYS


def arm_item(plan: ArmPlan) -> str:
    work = "retrains a given genotype" if plan.genotype else "searches"
    if plan.genotype is None:
        work += ", retrains" if plan.retrain else " only"
    tuned = ", ".join(f"`{key}`" for key in plan.study.tune.space)
    tuning = f", Optuna over {tuned} ({plan.num_samples} samples)" if tuned else ""
    group = f" [{plan.group}]" if plan.group else ""
    return (f"- `{plan.name}`{group}: {plan.method}, {work}; seeds "
            f"{', '.join(map(str, plan.seeds))}{tuning}")


def group_items(study: Study, plans: list[ArmPlan]) -> list[str]:
    items = [f"- `results/{name}.md` (.csv, .png): {spec.title or name}"
             for name, spec in study.groups.items() if any(p.group == name for p in plans)]
    if any(not plan.group for plan in plans):
        items.append("- `results/results.md` (.csv, .png): the ungrouped arms")
    return items


def study_note(study: Study, source: str, plans: list[ArmPlan]) -> str:
    head = f"## {study.name}" + (f"\n\n{study.description}" if study.description else "")
    return "\n".join([
        head, "", f"Study file `{source}`; resolved (profile and --set applied): `study.yaml`.",
        "", f"**Arms** ({len(plans)}):", *map(arm_item, plans), "",
        "**Tables** (artifacts of this run, rebuilt by `python -m orchestrator report`):",
        *group_items(study, plans), "",
        "**Trial runs** (nested): named `<arm>/s<seed>/<phase>/<tuned values>/<arch hash>`; "
        f"params: {', '.join(f'`{key}`' for key in FILTER_KEYS)} and what differs between "
        "arms or is tuned; each run's whole resolved study in its `config.json`.",
    ]) + "\n"
