"""The Ray-free training loops and their parts: the supernet search (bilevel, joint,
RSWS) and the retraining of a derived network, losses, optimisers and schedules, the test
protocol, cost and memory estimates, device selection, and the divergence guard.

`__all__` is what other packages may import; the modules are private to it."""

from typing import TYPE_CHECKING

from trainables import lazy_face

if TYPE_CHECKING:  # imported when first used (`lazy_face`)
    from trainables.loops.cost import count_parameters, flops_per_megapixel
    from trainables.loops.devices import configure, threads_for, tune_allocator
    from trainables.loops.evaluation import denoise_image, image_scores, protocol_hash, to_uint8
    from trainables.loops.history import SearchHistory, TableHistory
    from trainables.loops.inheritance import (
        SUPERNET_ARTIFACT,
        fetch_supernet,
        inherited_weights,
        supernet_bytes,
    )
    from trainables.loops.memory import GIB
    from trainables.loops.memory_study import study_memory, study_weights
    from trainables.loops.monitor import PREFIX, is_monitor_psnr
    from trainables.loops.parts import validation_keys
    from trainables.loops.retrain import derived_options, run_retrain
    from trainables.loops.search import run_search
    from trainables.loops.timing import (
        reference_now,
        retrain_seconds,
        retrain_throughput,
        search_seconds,
    )

__all__ = [
    "GIB",
    "PREFIX",
    "SUPERNET_ARTIFACT",
    "SearchHistory",
    "TableHistory",
    "configure",
    "count_parameters",
    "denoise_image",
    "derived_options",
    "fetch_supernet",
    "flops_per_megapixel",
    "image_scores",
    "inherited_weights",
    "is_monitor_psnr",
    "protocol_hash",
    "run_retrain",
    "reference_now",
    "retrain_seconds",
    "retrain_throughput",
    "run_search",
    "search_seconds",
    "study_memory",
    "study_weights",
    "supernet_bytes",
    "threads_for",
    "to_uint8",
    "tune_allocator",
    "validation_keys",
]

__getattr__ = lazy_face(__name__)
