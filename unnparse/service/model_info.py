"""What ``GET /models`` says of a served model: its name, the treebank it was trained on, its encoder, its K, what
it predicts and its scores on the development set during training (all read from the model's config)."""

from __future__ import annotations

from typing import Any

from unnparse.parser.predictor import Predictor

__all__ = ["model_summary"]

#: The development scores shown (as training recorded them, in percent).
_SCORES = ("uas", "las", "clas", "upos", "xpos", "feats", "lemma")


def _encoder_name(config: dict[str, Any]) -> str | None:
    encoder = config.get("encoder")
    if not isinstance(encoder, dict):
        return None
    if encoder.get("type") == "scratch":
        return "scratch (BiLSTM)"
    name = encoder.get("name")
    return str(name) if name is not None else None


def model_summary(name: str, parser: Predictor, *, default: bool = False) -> dict[str, Any]:
    """A JSON-ready summary of ``parser`` served as ``name`` (``default``: the model used when a request names
    none). An ensemble is described by its first member, with its member count."""
    config = parser.config if isinstance(parser.config, dict) else {}
    members = getattr(parser, "members", None)
    first = members[0].config if members else config
    model = first.get("model") if isinstance(first.get("model"), dict) else {}
    dev = config.get("dev") if isinstance(config.get("dev"), dict) else first.get("dev")
    scores = {key: round(float(dev[key]), 2) for key in _SCORES if isinstance(dev, dict) and key in dev}
    return {
        "name": name,
        "default": default,
        "treebank": config.get("treebank") or first.get("treebank"),
        "encoder": _encoder_name(first),
        "k": model.get("unn_iter"),
        "members": len(members) if members else 1,
        "predicts": ["head", "deprel", *parser.featurizer.tags],
        "trained_tokenizer": parser.tokenizer is not None,
        "dev_scores": scores,
    }
