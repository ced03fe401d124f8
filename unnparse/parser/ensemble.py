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

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import unnparse
from unnparse.conllu.sentence import Sentence
from unnparse.model_files import CONFIG_FILE, FILES_KEY, ModelFileError, commit_config, load_config
from unnparse.parser.model import best_known_label
from unnparse.parser.parser import Parser
from unnparse.parser.predictor import BatchPrediction, Predictor
from unnparse.structures import arc_marginals, max_spanning_tree

__all__ = ["ENSEMBLE_KIND", "ParserEnsemble", "combine_parsers", "mean_softmax"]

ENSEMBLE_KIND = "parser-ensemble"
ENSEMBLE_FORMAT = 1
MAX_MEMBERS = 100


class ParserEnsemble(Predictor):
    r"""Several parsers with the same relation labels (and tag sets) that parse as one.

    ``featurizer`` and the tokenizer are the first member's (its labels name the output); ``members`` holds them
    all. Parsing, evaluation and the Python API work as for a single :class:`Parser` (both are
    :class:`~unnparse.parser.predictor.Predictor`\ s).
    """

    def __init__(self, members: Sequence[Parser], config: dict[str, Any], *, precision: str = "auto") -> None:
        if not members:
            raise ValueError("an ensemble needs at least one parser")
        _check_compatible(members)
        first = members[0]
        self.members = list(members)
        super().__init__(first.featurizer, config, precision=precision)
        self.tokenizer = first.tokenizer
        self.multiword = first.multiword

    @Predictor.precision.setter  # type: ignore[attr-defined]
    def precision(self, name: str) -> None:
        """The ensemble's precision is its members'."""
        Predictor.precision.fset(self, name)  # type: ignore[attr-defined]
        for member in self.members:
            member.precision = name

    @property
    def device(self) -> torch.device:
        """Where the members are (the first member's device)."""
        return self.members[0].device

    def _to_eval_mode(self) -> None:
        for member in self.members:
            member.model.eval()

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], device: str | torch.device = "cpu", *, precision: str = "auto"
    ) -> ParserEnsemble:
        """Load an ensemble directory written by :func:`combine_parsers` (or :meth:`save`).

        Each member must be a single parser in a directory of its own inside the ensemble's (symbolic links
        resolved), named once; its ``config.json`` must have the sha256 that the ensemble's config records.

        Raises:
            ModelFileError: one line naming the file.
        """
        root = Path(path)
        config = load_config(root, kind=ENSEMBLE_KIND)
        cfg_path = root / CONFIG_FILE
        if config.get("format_version") != ENSEMBLE_FORMAT:
            raise ModelFileError(
                f"{cfg_path}: ensemble format {config.get('format_version')} is not supported by unnparse "
                f"{unnparse.__version__} (expects {ENSEMBLE_FORMAT})"
            )
        names = config.get("members")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ModelFileError(f"{cfg_path}: 'members' must be a non-empty list of member directories")
        if len(names) > MAX_MEMBERS:
            raise ModelFileError(f"{cfg_path}: {len(names)} members (at most {MAX_MEMBERS})")
        records = config.get(FILES_KEY)
        if records is not None and not isinstance(records, dict):
            raise ModelFileError(f"{cfg_path}: '{FILES_KEY}' must be an object")
        inside = root.resolve()
        seen: set[Path] = set()
        members = []
        for i, name in enumerate(names, start=1):
            member = _member_dir(root, inside, name, cfg_path)
            if member.resolve() in seen:
                raise ModelFileError(f"{cfg_path}: member {name!r} is named twice")
            seen.add(member.resolve())
            kind = load_config(member).get("kind")
            if kind != "parser":
                raise ModelFileError(
                    f"{member / CONFIG_FILE}: a {kind} model cannot be an ensemble member (members are single parsers)"
                )
            if records is not None:
                _check_member_config(member, records.get(f"member-{i}"), cfg_path)
            members.append(Parser.load(member, device, precision=precision))
        try:
            return cls(members, config, precision=precision)
        except ValueError as err:
            raise ModelFileError(f"{cfg_path}: {err}") from None

    def save(self, path: str | os.PathLike[str], *, extra: dict[str, Any] | None = None) -> Path:
        """Write the ensemble directory, atomically as a whole: each member into ``member-I-<hex>/`` (the hex from
        the sha256 of its config, which the ensemble's config records), then ``config.json`` naming them, then the
        removal of the members of the directory's previous ensemble."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        names, records = [], {}
        for i, member in enumerate(self.members, start=1):
            tmp = Path(tempfile.mkdtemp(prefix=".member-tmp-", dir=out))
            try:
                member.save(tmp)
                digest = hashlib.sha256((tmp / CONFIG_FILE).read_bytes()).hexdigest()
                name = f"member-{i}-{digest[:16]}"
                if (out / name / CONFIG_FILE).is_file():  # the same member (its config hashes all its files)
                    shutil.rmtree(tmp)
                else:
                    os.chmod(tmp, 0o777 & ~_umask())
                    os.rename(tmp, out / name)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            names.append(name)
            records[f"member-{i}"] = {"path": name, "config_sha256": digest}
        config = {**self.config, **(extra or {}), "kind": ENSEMBLE_KIND, "format_version": ENSEMBLE_FORMAT}
        config.update(members=names, unnparse_version=unnparse.__version__)
        config[FILES_KEY] = records
        commit_config(out, config)
        self.config = config
        return out

    def _predict_batch(self, sentences: Sequence[Sentence], idx: Sequence[int], marginals: bool) -> BatchPrediction:
        outputs = []
        for member in self.members:
            batch = member.featurizer.batch(sentences, idx, gold=False).to_device(self.device)
            network = member.network()
            outputs.append((network, batch, network(batch, marginals=False)))
        model, batch, _ = outputs[0]
        scores = torch.stack([out.scores.float() for _, _, out in outputs]).mean(0)
        heads = max_spanning_tree(scores, batch.lengths, single_root=model.single_root)
        rel_probs = mean_softmax([m.relation_logits(out, heads) for m, _, out in outputs])
        tags = {
            name: best_known_label(mean_softmax([out.tag_logits[name] for _, _, out in outputs]), batch.word_mask)
            for name in self.featurizer.tags
        }
        marg = arc_marginals(scores, batch.lengths, model.single_root)[1] if marginals else None
        return BatchPrediction(heads, best_known_label(rel_probs, batch.word_mask), tags, marg)


def _member_dir(root: Path, inside: Path, name: str, cfg_path: Path) -> Path:
    """The directory of member ``name``: one plain name (no ``.``, ``..``, separators or absolute path) whose real
    path (symbolic links resolved) lies inside the ensemble directory ``inside`` and is not that directory."""
    if name in ("", ".", "..") or "/" in name or "\\" in name or Path(name).is_absolute():
        raise ModelFileError(f"{cfg_path}: member {name!r} must name a directory inside the ensemble")
    member = root / name
    real = member.resolve()
    if real == inside or not real.is_relative_to(inside):
        raise ModelFileError(f"{member}: leads outside the ensemble directory (members must lie inside it)")
    if not real.is_dir():
        raise ModelFileError(f"{member}: missing (the ensemble directory is incomplete)")
    return member


def _check_member_config(member: Path, record: Any, cfg_path: Path) -> None:
    """A member's config.json has the sha256 that the ensemble records (so its files are the ensemble's)."""
    want = record.get("config_sha256") if isinstance(record, dict) else None
    if not isinstance(want, str):
        raise ModelFileError(f"{cfg_path}: '{FILES_KEY}' records no config_sha256 of member {member.name!r}")
    if hashlib.sha256((member / CONFIG_FILE).read_bytes()).hexdigest() != want:
        raise ModelFileError(f"{member / CONFIG_FILE}: not the member the ensemble was made of (its sha256 differs)")


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def mean_softmax(logits: Sequence[Tensor]) -> Tensor:
    """The mean over ``logits`` of their softmax along the last dimension (the members' mean probabilities)."""
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
            has_tagger = other.model.lemmatizer is not None if name == "lemma" else name in other.model.taggers
            if theirs is None or theirs.itos != vocab.itos or not has_tagger:
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
        if load_config(path).get("kind") == ENSEMBLE_KIND:
            raise ModelFileError(f"{Path(path) / CONFIG_FILE}: is an ensemble already; combine its members instead")
        members.append(Parser.load(path, device))
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
