"""A search trial's sample is scored by the epoch whose genotype it carries (its best on V),
not by its last epoch (`orchestrator.run.ranking`)."""

import json

import pytest

from orchestrator.run.ranking import carried_metrics
from orchestrator.run.searcher import StudySearcher
from tests.orchestrator.test_study_searcher import Driver, genotype, plans, trials, tuned


def best_epoch_genotype(score: float, psnr: float, epoch: int = 3) -> str:
    data = json.loads(genotype(0))
    data["provenance"] = {**data.get("provenance", {}), "epoch": epoch, "val_score": score,
                          "val_psnr": psnr}
    return json.dumps(data)


def test_val_metrics_are_the_carried_epoch_s():
    last = {"val/score": 0.5, "val/psnr": 20.0, "val/ssim": 0.3, "train/loss": 0.01,
            "genotype": best_epoch_genotype(0.9, 25.0)}
    carried = carried_metrics(last)
    assert (carried["val/score"], carried["val/psnr"]) == (0.9, 25.0)
    assert carried["val/ssim"] == pytest.approx(0.65) and carried["train/loss"] == 0.01


def test_a_genotype_without_scores_or_a_result_without_a_search_is_left_alone():
    plain = {"val/score": 0.5, "genotype": genotype(0)}
    assert carried_metrics(plain) == plain
    given = {"genotype": best_epoch_genotype(0.9, 25.0), "mlflow_run_id": ""}
    assert carried_metrics(given) == given


def test_the_supernet_objective_ranks_the_epoch_it_retrains():
    driver = Driver(StudySearcher(plans(tune=tuned(objective="supernet"))))
    driver.suggest()
    driver.complete("default/t0/s0", "search",
                    {"genotype": best_epoch_genotype(0.9, 25.0), "mlflow_run_id": "run",
                     "val/score": 0.5, "val/psnr": 20.0})
    assert trials(driver)[0].value == 0.9
