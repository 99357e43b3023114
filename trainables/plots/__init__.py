"""Pictures of a trial, logged to its MLflow run under `plots/`: the search's
curves and architecture weights, the architecture diagram of every genotype, and the
retrained network's denoised samples. What each space shows comes from
`searchspaces.views`; drawing is generic and deterministic (`canvas.render`).

`search_plots` and `retrain_plots` name each artifact with a function that makes its PNG,
so the caller can log each one and survive a failing one."""

from typing import TYPE_CHECKING

from trainables import lazy_face

if TYPE_CHECKING:  # imported when first used (`lazy_face`)
    from trainables.plots.arch_weights import arch_weights_png
    from trainables.plots.architecture import architecture_png
    from trainables.plots.canvas import DPI, render
    from trainables.plots.curves import curves_png
    from trainables.plots.samples import samples_png
    from trainables.plots.strips import sample_strips
    from trainables.plots.trials import log_plots, retrain_plots, search_plots

__all__ = ["DPI", "arch_weights_png", "architecture_png", "curves_png", "log_plots", "render",
           "retrain_plots", "sample_strips", "samples_png", "search_plots"]

__getattr__ = lazy_face(__name__)
