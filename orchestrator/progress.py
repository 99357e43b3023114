"""One short line per trial event on the console, instead of Tune's tables."""

from __future__ import annotations

from ray.tune import Callback

SHOWN = ("train/loss", "val/psnr", "best/score", "search/alpha_entropy")


def label(trial) -> str:
    config = trial.config or {}
    return f"{config.get('unit', trial.trial_id)} {config.get('phase', '')}".strip()


class ProgressLines(Callback):
    def on_trial_result(self, iteration, trials, trial, result, **info):
        shown = " ".join(f"{k}={result[k]:.4g}" for k in SHOWN if k in result)
        print(f"[{label(trial)}] epoch {result.get('epoch', '?')}: {shown}", flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = trial.last_result or {}
        tests = {k: v for k, v in result.items() if k.startswith("test/") and k.endswith("psnr")}
        shown = " ".join(f"{k}={v:.2f}" for k, v in tests.items())
        arch = result.get("arch_hash", "")
        print(f"[{label(trial)}] done {arch} {shown}".rstrip(), flush=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        print(f"[{label(trial)}] FAILED (see its MLflow run and {trial.path})", flush=True)
