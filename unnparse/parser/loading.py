"""Loading any parser model directory: one parser, or an ensemble of parsers."""

from __future__ import annotations

import os

import torch

from unnparse.model_files import load_config
from unnparse.parser.ensemble import ENSEMBLE_KIND, ParserEnsemble
from unnparse.parser.parser import Parser
from unnparse.parser.predictor import Predictor

__all__ = ["load"]


def load(path: str | os.PathLike[str], device: str | torch.device = "cpu", *, precision: str = "auto") -> Predictor:
    """The parser in the model directory ``path``: a :class:`~unnparse.parser.parser.Parser`, or a
    :class:`~unnparse.parser.ensemble.ParserEnsemble` for a directory written by
    :func:`~unnparse.parser.ensemble.combine_parsers`. Both parse alike (:class:`Predictor`).

    Raises:
        ModelFileError: a missing, corrupt, mismatched or out-of-range part (one line naming the file).
    """
    if load_config(path).get("kind") == ENSEMBLE_KIND:
        return ParserEnsemble.load(path, device, precision=precision)
    return Parser.load(path, device, precision=precision)
