"""The ``unnparse train`` options that benchmarks measured before the parser's defaults changed pass explicitly, so
that their commands still train what they measured: the linear decay to the last epoch (``--schedule decay``), a
word BiLSTM of 3 layers and batches of 1000 padded tokens, whatever the size of the treebank. Options given after
these win (the command line's last value of an option is the one taken)."""

from __future__ import annotations

__all__ = ["MEASURED_WITH"]

MEASURED_WITH: tuple[str, ...] = ("--schedule", "decay", "--lstm-layers", "3", "--batch-tokens", "1000")
