"""studies/hinas.yaml runs the journal's denoising experiment (Sec. 4) at the official
code's training settings; its Optuna exploration starts from the paper's point."""

from pathlib import Path

from orchestrator.study.reading import load_study
from studyspec.dotted import get_dotted

HINAS = Path(__file__).resolve().parents[2] / "studies" / "hinas.yaml"
PAPER = {"search_space.options.width": 10, "search_space.options.num_nodes": 4,
         "search_space.options.num_layers": 3, "search.loss.ssim_lambda": 0.5}


def test_the_paper_s_point_is_the_file_s_and_optuna_s_first():
    study = load_study(HINAS)
    document = study.model_dump(mode="json", by_alias=True)
    assert {key: get_dotted(document, key) for key in PAPER} == PAPER
    assert study.tune.start_from == [PAPER] and study.tune.num_samples == 1
    assert load_study(HINAS, profile="explore").tune.start_from == [PAPER]


def test_search_and_retraining_settings_are_the_paper_s_and_the_code_s():
    study = load_study(HINAS)
    search, retrain = study.search, study.retrain
    assert (search.epochs, search.epoch, search.batch_size) == (100, "images", 8)
    assert (search.warmup_epochs, search.validate_from_epoch) == (20, 60)
    weights = search.weight_optimizer
    assert (weights.schedule, weights.period_epochs, weights.lr, weights.lr_min) == \
        ("poly_cosine", 10, 0.025, 0.001)
    assert search.arch_optimizer.betas == (0.9, 0.999) and search.grad_clip_norm is None
    assert search.loss.ssim_padding == retrain.loss.ssim_padding == "same"
    assert retrain.epochs * retrain.steps_per_epoch == 400_000 and retrain.batch_size == 24
    assert retrain.optimizer.bias is not None and retrain.optimizer.weight_decay == 4e-5
    assert retrain.select == "best_v_last_quarter" and retrain.scale_options == {"width": 2}
    assert [noise.sigma for noise in retrain.noise] == [30, 50, 70]
    assert study.data.rescale is True and study.retrain_options()["width"] == 20
