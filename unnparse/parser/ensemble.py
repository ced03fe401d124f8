"""Parser ensembles: several parsers trained on the same treebank parse as one.

Each member scores every arc; the ensemble decodes the single-root maximum spanning tree of the members' mean arc
scores (a product of the members' tree distributions), labels each chosen arc with the highest mean relation
probability, and tags with the highest mean tag probability. An ensemble of copies of one parser parses exactly as
that parser. Members trained side by side (for example two ``--threads 1`` runs on a 2-core machine, with different
``--seed`` or ``--char-encoder``) cost the same wall-clock training time as one run on the whole CPU; parsing costs
one forward pass per member.

    unnparse ensemble models/en-a models/en-b --output models/en-ensemble
    unnparse parse --model models/en-ensemble < input.txt
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import unnparse
from unnparse.model_files import CONFIG_FILE, ModelFileError, load_config, save_config
from unnparse.parser.conllu_data import Sentence
from unnparse.parser.model import best_known_label
from unnparse.parser.parser import BatchPrediction, Parser
from unnparse.structures import arc_marginals, max_spanning_tree

__all__ = ["ENSEMBLE_KIND", "ParserEnsemble", "combine_parsers"]

ENSEMBLE_KIND = "parser-ensemble"
ENSEMBLE_FORMAT = 1


class ParserEnsemble(Parser):
    """Several parsers with the same relation labels (and tag sets) that parse as one.

    ``model``, ``featurizer`` and ``config`` are the first member's (its labels name the output); ``members`` holds
    them all. Parsing, evaluation and the Python API work as for a single :class:`Parser`.
    """

    def __init__(self, members: Sequence[Parser], config: dict[str, Any], *, precision: str = "auto") -> None:
        if not members:
            raise ValueError("an ensemble needs at least one parser")
        _check_compatible(members)
        first = members[0]
        super().__init__(first.model, first.featurizer, config, precision=precision)
        self.members = list(members)
        self.tokenizer = first.tokenizer

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], device: str | torch.device = "cpu", *, precision: str = "auto"
    ) -> ParserEnsemble:
        """Load an ensemble directory written by :func:`combine_parsers` (or :meth:`save`)."""
        config = load_config(path, kind=ENSEMBLE_KIND)
        cfg_path = Path(path) / CONFIG_FILE
        if config.get("format_version") != ENSEMBLE_FORMAT:
            raise ModelFileError(
                f"{cfg_path}: ensemble format {config.get('format_version')} is not supported by unnparse "
                f"{unnparse.__version__} (expects {ENSEMBLE_FORMAT})"
            )
        names = config.get("members")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ModelFileError(f"{cfg_path}: 'members' must be a non-empty list of member directories")
        members = []
        for name in names:
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise ModelFileError(f"{cfg_path}: member {name!r} must be a directory inside the ensemble")
            members.append(Parser.load(Path(path) / name, device, precision=precision))
        try:
            return cls(members, config, precision=precision)
        except ValueError as err:
            raise ModelFileError(f"{cfg_path}: {err}") from None

    def save(self, path: str | os.PathLike[str], *, extra: dict[str, Any] | None = None) -> Path:
        """Write the ensemble directory: each member in ``member-I/`` and a ``config.json`` naming them."""
        out = Path(path)
        names = [f"member-{i + 1}" for i in range(len(self.members))]
        for member, name in zip(self.members, names, strict=True):
            member.save(out / name)
        config = {**self.config, **(extra or {}), "kind": ENSEMBLE_KIND, "format_version": ENSEMBLE_FORMAT}
        config.update(members=names, unnparse_version=unnparse.__version__)
        save_config(out, config)
        self.config = config
        return out

    def _predict_batch(self, sentences: Sequence[Sentence], idx: Sequence[int], marginals: bool) -> BatchPrediction:
        outputs = []
        for member in self.members:
            batch = member.featurizer.batch(sentences, idx, gold=False).to_device(self.device)
            outputs.append((member.model, batch, member.model(batch, marginals=False)))
        model, batch, _ = outputs[0]
        scores = torch.stack([out.scores.float() for _, _, out in outputs]).mean(0)
        heads = max_spanning_tree(scores, batch.lengths, single_root=model.single_root)
        rel_probs = _mean_softmax([m.relation_logits(out, heads) for m, _, out in outputs])
        tags = {
            name: best_known_label(_mean_softmax([out.tag_logits[name] for _, _, out in outputs]), batch.word_mask)
            for name in self.featurizer.tags
        }
        marg = arc_marginals(scores, batch.lengths, model.single_root)[1] if marginals else None
        return BatchPrediction(heads, best_known_label(rel_probs, batch.word_mask), tags, marg)


def _mean_softmax(logits: Sequence[Tensor]) -> Tensor:
    return torch.stack([torch.softmax(x.float(), dim=-1) for x in logits]).mean(0)


def _check_compatible(members: Sequence[Parser]) -> None:
    first = members[0]
    for i, other in enumerate(members[1:], start=2):
        if other.featurizer.rels.itos != first.featurizer.rels.itos:
            raise ValueError(f"member {i} was trained with other relation labels than member 1 (same treebank?)")
        if other.model.single_root != first.model.single_root:
            raise ValueError(f"member {i} decodes {'single' if other.model.single_root else 'multi'}-root trees")
        for name, vocab in first.featurizer.tags.items():
            theirs = other.featurizer.tags.get(name)
            if theirs is None or theirs.itos != vocab.itos or name not in other.model.taggers:
                raise ValueError(f"member {i} has no {name.upper()} tagger with member 1's tags")


def combine_parsers(
    models: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str], *, device: str = "cpu"
) -> Path:
    """Combine trained parser directories into one ensemble directory ``output`` (which must not exist yet).

    The members are loaded (so that incompatible ones are refused with a one-line error) and written afresh into
    the ensemble; the directory appears only once complete.

    Raises:
        ModelFileError: a member is missing, corrupt, an ensemble itself, or incompatible with the first.
        FileExistsError: ``output`` exists.
    """
    out = Path(output)
    if out.exists():
        raise FileExistsError(f"{out}: already exists (choose a new directory for the ensemble)")
    if len(models) < 2:
        raise ValueError("an ensemble needs at least two models")
    members = []
    for path in models:
        member = Parser.load(path, device)
        if isinstance(member, ParserEnsemble):
            raise ModelFileError(f"{Path(path) / CONFIG_FILE}: is an ensemble already; combine its members instead")
        members.append(member)
    try:
        ensemble = ParserEnsemble(members, {"treebank": members[0].config.get("treebank")})
    except ValueError as err:
        raise ModelFileError(f"{Path(models[0])} and the others: {err}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        ensemble.save(tmp, extra={"combined_from": [str(Path(p)) for p in models]})
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
