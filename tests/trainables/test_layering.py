"""The training loops stay free of Ray and MLflow (only the thin Tune adapters import them)."""

import subprocess
import sys

LOOPS = ["trainables.search_loop", "trainables.retrain_loop", "trainables.loop_parts",
         "trainables.evaluation", "trainables.cost", "searchspaces"]


def test_loops_import_neither_ray_nor_mlflow():
    code = (f"import sys; import {', '.join(LOOPS)}; "
            "print(sorted(m for m in ('ray', 'mlflow', 'optuna') if m in sys.modules))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert output == "[]"


def test_adapters_do_import_ray():
    code = "import sys, trainables.tune_search; print('ray' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert output == "True"
