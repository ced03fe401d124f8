"""Loading any parser model directory: one parser, or an ensemble of parsers; and which directory to load when none
is named (:func:`default_model_dir`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from unnparse.model_files import ModelFileError, load_config, model_kind
from unnparse.parser.ensemble import ENSEMBLE_KIND, ParserEnsemble
from unnparse.parser.parser import Parser
from unnparse.parser.predictor import Predictor

__all__ = ["MODEL_ENV", "MODELS_DIR", "NoModelFoundError", "default_model_dir", "load"]

#: The environment variable that names the model to use when none is given.
MODEL_ENV = "UNNPARSE_MODEL"
#: Where ``unnparse train`` writes its models by default, and where a model is looked for when none is given.
MODELS_DIR = Path("models")


class NoModelFoundError(ModelFileError):
    """No model was given and none was found (the message is one line that says how to get one)."""


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


def default_model_dir(
    model: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    models_dir: str | os.PathLike[str] = MODELS_DIR,
) -> tuple[Path, str | None]:
    """The model directory to parse with, and why it was chosen (``None`` when ``model`` is given):
    ``model``, else ``$UNNPARSE_MODEL`` (from ``environ``, default :data:`os.environ`), else the parser or ensemble
    under ``models_dir`` (default ``./models``) trained most recently (its ``config.json``, written last, is the
    newest).

    Raises:
        NoModelFoundError: none of the three gives a model.
    """
    if model is not None:
        return Path(model), None
    env = (os.environ if environ is None else environ).get(MODEL_ENV)
    if env:
        return Path(env), f"${MODEL_ENV}"
    root = Path(models_dir)
    candidates = []
    if root.is_dir():
        for cfg in root.glob("*/config.json"):
            try:  # config.json is written last: its time is the model's
                if model_kind(cfg.parent) in ("parser", ENSEMBLE_KIND):
                    candidates.append((cfg.stat().st_mtime, cfg.parent))
            except OSError:
                continue
    where = str(root) if root.is_absolute() else f"./{root.as_posix()}"
    if not candidates:
        raise NoModelFoundError(
            f"no model given and none found under {where}: train one with "
            "`unnparse train --treebank NAME` (or `make demo`), or pass --model DIR"
        )
    return max(candidates)[1], f"most recent under {where}"
