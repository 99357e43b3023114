"""`python -m orchestrator export RUN --out DIR`: a retrained network that loads without MLflow.

DIR receives `genotype.json` (the architecture), `model.pt` (its weights, a state dict for
`torch.load(..., weights_only=True)`), `network.json` (search space, resolved options and
input channels the network is built with), `config.json` (the run's Tune config and
resolved study, as logged), `reproducibility.json` when the run has one, and a `README.md`
whose Python snippet builds the network with this project's registry and loads the weights.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from orchestrator.commands.runs import (
    GENOTYPE_FILE,
    WEIGHTS_FILE,
    RunError,
    artifact,
    find_run,
    run_config,
    run_genotype,
    run_label,
    trial_study,
)
from searchspaces.genotype import Genotype
from studyspec.schema import Study
from trainables.loops import derived_options
from trainables.tracking import CONFIG_FILE, RECORD_FILE

NETWORK_FILE = "network.json"
README = """# {name}

Exported from MLflow run `{run_id}` ({run_name}) of study `{study}`: a `{space}` network,
architecture `{arch_hash}`, trained at seed {seed}.{scores}

Build it and load its weights, without MLflow (from this folder, with this project's
packages importable, e.g. `pip install -e` of its checkout):

```python
import json

import torch

from searchspaces.genotype import Genotype
from searchspaces.registry import build_derived_from_genotype

network = json.load(open("{network_file}"))
model = build_derived_from_genotype(Genotype.load("{genotype_file}"), network["options"],
                                    network["in_channels"])
model.load_state_dict(torch.load("model.pt", weights_only=True))
model.eval()
# noisy: (B, {channels}, H, W) floats in [0, 1]; denoised = model(noisy)
```

Files: `{genotype_file}` (architecture), `model.pt` (state dict), `{network_file}` (space,
options, input channels), `{config_file}` (the run's trial config and resolved study),
`{record_file}` (package versions, device, seeds, commit, data hash; when logged).
"""


def network_spec(genotype: Genotype, study: Study) -> dict[str, Any]:
    """What `build_derived_from_genotype` needs besides the genotype."""
    return {"space": genotype.space, "options": derived_options(study),
            "in_channels": 3 if study.data.color else 1}


def test_scores(metrics: dict[str, float]) -> str:
    scores = [f"{key.removeprefix('test/')} {value:.2f}" for key, value in sorted(metrics.items())
              if key.startswith("test/") and key.endswith("/psnr")]
    return f"\nTest PSNR (dB): {', '.join(scores)}." if scores else ""


def readme(run, genotype: Genotype, network: dict[str, Any]) -> str:
    tags = run.data.tags
    return README.format(
        name=run.info.run_name, run_id=run.info.run_id, run_name=run.info.run_name,
        study=tags.get("study", "?"), space=genotype.space, arch_hash=genotype.arch_hash(),
        seed=tags.get("seed", "?"), scores=test_scores(run.data.metrics),
        network_file=NETWORK_FILE, genotype_file=GENOTYPE_FILE, channels=network["in_channels"],
        config_file=CONFIG_FILE, record_file=RECORD_FILE)


def export_run(uri: str, run_id: str, out: str | Path) -> list[Path]:
    """Write the export folder; the paths written."""
    client = MlflowClient(uri)
    run = find_run(client, run_id)
    weights = artifact(client, run, WEIGHTS_FILE)  # first: a search run has none
    genotype, config = run_genotype(client, run), run_config(client, run)
    try:
        study = Study.model_validate(trial_study(config))
    except ValueError as error:
        first = (str(error).splitlines() or [""])[0]
        raise RunError(f"{run_label(run)}: its logged study no longer validates: {first}") \
            from None
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    network = network_spec(genotype, study)
    files = {GENOTYPE_FILE: genotype.to_json() + "\n", NETWORK_FILE: json.dumps(network,
             indent=2) + "\n", CONFIG_FILE: json.dumps(config, indent=2) + "\n",
             "README.md": readme(run, genotype, network)}
    written = [shutil.copyfile(weights, folder / "model.pt")]
    for name, text in files.items():
        (folder / name).write_text(text)
        written.append(folder / name)
    if RECORD_FILE in {item.path for item in client.list_artifacts(run.info.run_id)}:
        written.append(Path(shutil.copyfile(artifact(client, run, RECORD_FILE),
                                            folder / RECORD_FILE)))
    return [Path(path) for path in written]
