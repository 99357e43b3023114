"""The Ray Tune side of a trial: the one trainable of a study, its search and
retrain adapters, and the session they share (MLflow child run, checkpoints, reports).

`__all__` is what other packages may import; the modules are private to it."""

from typing import TYPE_CHECKING

from trainables import lazy_face

if TYPE_CHECKING:  # imported when first used (`lazy_face`)
    from trainables.tune.nospace import NO_SPACE
    from trainables.tune.session import RESULT_FILE, TrialContext
    from trainables.tune.trainable import Loops, study_trainable

__all__ = [
    "Loops",
    "NO_SPACE",
    "RESULT_FILE",
    "TrialContext",
    "study_trainable",
]

__getattr__ = lazy_face(__name__)
