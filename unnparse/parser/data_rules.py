"""Training options that ``unnparse train`` chooses from the training data when they are not given (and the
number of epochs when there is no dev set to tell when learning stops).

The rule was chosen leave one out (BENCHMARKS.md, "Defaults, never tuned on the treebank they are reported on"):
on each of three small treebanks (5,000 to 45,000 training words), the options that the *other two* preferred on
their dev sets were a word BiLSTM of 2 layers and batches of 500 padded tokens, with the scratch encoder. A small
training set gives few updates per epoch and little to fill a deep network with; larger treebanks keep the values
the parser was designed with (3 layers, 1000 tokens), which also suit GPUs and pretrained encoders. Treebanks
between the sizes measured and :data:`SMALL_TRAINING_WORDS` follow the small rule by extrapolation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "EPOCHS_WITHOUT_DEV",
    "LARGE_OPTIONS",
    "SMALL_OPTIONS",
    "SMALL_TRAINING_WORDS",
    "DataChoice",
    "options_from_data",
]

#: Epochs of training without a dev set (when none are asked for): nothing then says when learning stops.
EPOCHS_WITHOUT_DEV = 30
#: A training set of fewer words than this is small: the scratch encoder's options for small treebanks apply.
SMALL_TRAINING_WORDS = 100_000
#: The options chosen from the data, by CLI parameter name, for a small and for any other training set.
SMALL_OPTIONS: Mapping[str, int] = {"lstm_layers": 2, "batch_tokens": 500}
LARGE_OPTIONS: Mapping[str, int] = {"lstm_layers": 3, "batch_tokens": 1000}


@dataclass(frozen=True)
class DataChoice:
    """The options chosen from a training set, and why.

    Attributes:
        values: option name -> value (``lstm_layers``, ``batch_tokens``).
        reason: one line saying what in the data chose them.
    """

    values: Mapping[str, int]
    reason: str


def options_from_data(words: int, encoder_type: str) -> DataChoice:
    """The options for a training set of ``words`` words and an encoder of ``encoder_type`` (``scratch`` or
    ``transformer``): with the scratch encoder, :data:`SMALL_OPTIONS` below :data:`SMALL_TRAINING_WORDS` words and
    :data:`LARGE_OPTIONS` from there on; with a pretrained encoder, the large values (the small rule was measured
    with the scratch encoder only).

    Raises:
        ValueError: a negative number of words.
    """
    if words < 0:
        raise ValueError(f"a training set has no negative number of words ({words})")
    if encoder_type == "scratch" and words < SMALL_TRAINING_WORDS:
        return DataChoice(SMALL_OPTIONS, f"{words:,} training words, under {SMALL_TRAINING_WORDS:,}: a small treebank")
    if encoder_type == "scratch":
        return DataChoice(LARGE_OPTIONS, f"{words:,} training words, {SMALL_TRAINING_WORDS:,} or more")
    return DataChoice(LARGE_OPTIONS, "a pretrained encoder")
