"""The training loops stay free of Ray and MLflow (only the thin Tune adapters import them)."""

import subprocess
import sys

LOOPS = ["trainables.loops.search", "trainables.loops.retrain", "trainables.loops.parts",
         "trainables.loops.evaluation", "trainables.loops.cost", "searchspaces"]


def test_loops_import_neither_ray_nor_mlflow():
    code = (f"import sys; import {', '.join(LOOPS)}; "
            "print(sorted(m for m in ('ray', 'mlflow', 'optuna') if m in sys.modules))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert output == "[]"


def test_adapters_do_import_ray():
    code = "import sys, trainables.tune.search; print('ray' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert output == "True"
