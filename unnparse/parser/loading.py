"""Loading any parser model directory: one parser, or an ensemble of parsers; and which directory to load when none
is named (:func:`default_model_dir`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from unnparse.model_files import (
    CONFIG_FILE,
    MAX_CONFIG_BYTES,
    ModelFileError,
    load_config,
    model_kind,
    read_json_file,
)
from unnparse.parser.ensemble import ENSEMBLE_KIND, ParserEnsemble
from unnparse.parser.parser import Parser
from unnparse.parser.predictor import Predictor

__all__ = [
    "MODEL_ENV",
    "MODELS_DIR",
    "NoModelFoundError",
    "default_model_dir",
    "load",
    "model_language",
    "treebank_language",
]

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


def treebank_language(treebank: str | None) -> str | None:
    """The language of a UD treebank's name (``UD_Ancient_Greek-PROIEL`` → ``Ancient Greek``); None for a name
    that is not a UD treebank's, or none."""
    if not treebank or not treebank.startswith("UD_"):
        return None
    return treebank.removeprefix("UD_").split("-", 1)[0].replace("_", " ") or None


def model_language(directory: str | os.PathLike[str]) -> str | None:
    """The language of the treebank a parser (or ensemble) directory was trained on, from its ``config.json``
    (None when it does not say: trained on files rather than a named treebank)."""
    try:
        config = read_json_file(Path(directory) / CONFIG_FILE, max_bytes=MAX_CONFIG_BYTES, what="model config")
    except ModelFileError:
        return None
    return treebank_language(config.get("treebank")) if isinstance(config, dict) else None


def default_model_dir(
    model: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    models_dir: str | os.PathLike[str] = MODELS_DIR,
) -> tuple[Path, str | None]:
    """The model directory to parse with, and why it was chosen (``None`` when ``model`` is given):
    ``model``, else ``$UNNPARSE_MODEL`` (from ``environ``, default :data:`os.environ`), else the parser or ensemble
    under ``models_dir`` (default ``./models``) trained most recently (its ``config.json``, written last, is the
    newest) — provided every model there is of one language (by the treebank it was trained on): text in one
    language parsed by a model of another gives wrong trees without any error, so a choice between languages is
    the user's.

    Raises:
        NoModelFoundError: none of the three gives a model, or the models under ``models_dir`` are of several
            languages (or of unknown ones beside others); the message lists them.
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
    newest = max(candidates)[1]
    if len(candidates) == 1:
        return newest, f"the only model under {where}"
    languages = {path: model_language(path) for _, path in candidates}
    if len(set(languages.values())) > 1:
        listed = ", ".join(
            f"{path.name} ({language or 'language unknown'})" for path, language in sorted(languages.items())
        )
        raise NoModelFoundError(
            f"no model given, and the models under {where} are for different languages: {listed}; "
            f"pass --model DIR (or set ${MODEL_ENV})"
        )
    language = languages[newest]
    return newest, f"the most recent of {len(candidates)} {language or ''} models under {where}".replace("  ", " ")
