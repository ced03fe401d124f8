"""Structured distillation: what a teacher (one parser or an ensemble) tells a student about each training sentence.

The teacher's tree distribution is the one it decodes from: for one parser ``p(tree) ∝ exp(sum of arc scores)``,
for an ensemble the same with the members' mean arc scores (the distribution whose best tree the ensemble
outputs). Its exact arc marginals (the matrix-tree theorem) are the arc targets: the student's arc loss
``log Z − Σ μ_teacher(h→d) s(h→d)`` is the cross-entropy of the student's tree distribution against the
teacher's, i.e. the student's expected −log-likelihood of a tree drawn from the teacher, computed without
sampling since both are arc-factored. The label targets are the teacher's relation probabilities (the members'
mean) of each word's arc from the head the student learns (the gold head, or for unlabelled text the teacher's).

Raw text without trees (``unnparse train --teacher T --unlabeled FILE``) is parsed by the teacher first; its trees
and tags then stand for the gold ones (and its marginals and label probabilities are the soft targets).

Targets are computed once before training, in the teacher's evaluation mode, and kept in memory as float16
(``(n+1)² + (n+1)·R`` numbers per sentence of n words and R relation labels); :data:`MAX_TARGET_NUMBERS` bounds
them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from unnparse.conllu.sentence import Sentence
from unnparse.parser.batching import inference_batches
from unnparse.parser.ensemble import ParserEnsemble, mean_softmax
from unnparse.parser.parser import Parser
from unnparse.parser.predictor import Predictor
from unnparse.parser.vocab import Vocab
from unnparse.structures import arc_marginals

__all__ = [
    "MAX_TARGET_NUMBERS",
    "DistillationError",
    "TeacherTargets",
    "pad_targets",
    "targets_fingerprint",
    "teacher_labelled",
    "teacher_targets",
]

#: At most this many float16 numbers of targets (2 GiB): a larger unlabelled corpus is refused before any work.
MAX_TARGET_NUMBERS = 1 << 30


class DistillationError(ValueError):
    """A teacher that cannot teach this student, or targets that would not fit (one line)."""


@dataclass
class TeacherTargets:
    """What the teacher says of one sentence of ``n`` words.

    Attributes:
        arcs: ``[n+1, n+1]`` float16, ``arcs[h, d]`` = P(h → d) under the teacher (column 0 and the diagonal 0).
        labels: ``[n+1, R]`` float16, row ``d`` = the teacher's probabilities of the student's relation labels for
            the arc of word ``d`` (row 0, ROOT, is 0).
    """

    arcs: Tensor
    labels: Tensor


def members_of(teacher: Predictor) -> list[Parser]:
    """The parsers whose mean arc scores and label probabilities a teacher stands for."""
    if isinstance(teacher, ParserEnsemble):
        return list(teacher.members)
    if isinstance(teacher, Parser):
        return [teacher]
    raise DistillationError(f"a teacher must be a parser or an ensemble of parsers, not {type(teacher).__name__}")


def label_map(teacher: Predictor, rels: Vocab) -> Tensor:
    """``[R_teacher, R_student]`` 0/1 matrix taking the teacher's label ids to the student's (by name).

    Raises:
        DistillationError: the two share no relation label but the unknown one.
    """
    theirs = teacher.featurizer.rels.itos
    mapping = torch.zeros(len(theirs), len(rels))
    for i, name in enumerate(theirs):
        j = rels.stoi.get(name)
        if j is not None and i > 0 and j > 0:
            mapping[i, j] = 1.0
    if mapping.sum() == 0:
        raise DistillationError("the teacher and the student share no relation label (trained on other treebanks?)")
    return mapping


def teacher_labelled(
    teacher: Predictor, sentences: Iterable[Sentence], *, batch_tokens: int = 4000, max_words: int
) -> list[Sentence]:
    """Sentences without trees parsed by the teacher: its trees, labels and tags stand for the gold ones. Sentences
    longer than ``max_words`` words are left out (a training sentence must be parsed whole)."""
    short = (s for s in sentences if 0 < len(s) <= max_words)
    return [p.sentence for p in teacher.predict(short, batch_tokens=batch_tokens)]


@torch.no_grad()
def teacher_targets(
    teacher: Predictor,
    sentences: Sequence[Sentence],
    rels: Vocab,
    *,
    batch_tokens: int = 4000,
    temperature: float = 1.0,
    on_batch: Callable[[int], None] | None = None,
) -> list[TeacherTargets]:
    """The teacher's arc marginals and label probabilities for each of ``sentences`` (which have heads: the arcs
    whose labels are asked for), in order. ``rels`` is the student's relation vocabulary; ``on_batch`` hears the
    number of sentences done after each batch. With a ``temperature`` T > 1 the teacher's distributions are those
    of its scores divided by T (the tree distribution ∝ exp(score / T), the labels' softmax(logits / T)): softer
    targets that say more than the gold tree where the teacher is sure of it, as on its own training data.

    Raises:
        DistillationError: more targets than :data:`MAX_TARGET_NUMBERS`, or no label in common.
    """
    numbers = sum((len(s) + 1) * (len(s) + 1 + len(rels)) for s in sentences)
    if not temperature > 0:
        raise DistillationError(f"the teacher's temperature must be positive, not {temperature}")
    if numbers > MAX_TARGET_NUMBERS:
        raise DistillationError(
            f"the teacher's targets for {len(sentences):,} sentences would take {2 * numbers / 2**30:.1f} GiB "
            f"(at most {2 * MAX_TARGET_NUMBERS / 2**30:.0f}): give less unlabelled text"
        )
    members = members_of(teacher)
    mapping = label_map(teacher, rels).to(teacher.device)
    teacher._to_eval_mode()
    out: list[TeacherTargets | None] = [None] * len(sentences)
    done = 0
    for idx in inference_batches([len(s) for s in sentences], batch_tokens):
        group = [sentences[i] for i in idx]
        for s in group:
            if s.heads is None:
                raise DistillationError(f"{s.source}:{s.line}: sentence has no HEAD column for the teacher's labels")
        lengths = torch.tensor([len(s) for s in group])
        width = int(lengths.max()) + 1
        heads = torch.zeros(len(group), width, dtype=torch.long)
        for b, s in enumerate(group):
            heads[b, 1 : len(s) + 1] = torch.tensor(s.heads, dtype=torch.long)
        heads = heads.to(teacher.device)
        scores, logits = [], []
        for member in members:
            batch = member.featurizer.batch(group, idx, gold=False).to_device(teacher.device)
            network = member.network()
            result = network(batch, marginals=False)
            scores.append(result.scores.float() / temperature)
            logits.append(network.relation_logits(result, heads).float() / temperature)
        mean_scores = torch.stack(scores).mean(0)
        marginals = arc_marginals(mean_scores, lengths.to(mean_scores.device), members[0].model.single_root)[1]
        labels = mean_softmax(logits) @ mapping
        labels = labels / labels.sum(-1, keepdim=True).clamp_min(1e-12)
        for b, (i, s) in enumerate(zip(idx, group, strict=True)):
            n1 = len(s) + 1
            row_labels = labels[b, :n1].clone()
            row_labels[0] = 0
            out[i] = TeacherTargets(marginals[b, :n1, :n1].to(torch.float16).cpu(), row_labels.half().cpu())
        done += len(idx)
        if on_batch is not None:
            on_batch(done)
    return [t for t in out if t is not None]


def pad_targets(targets: Sequence[TeacherTargets], width: int) -> tuple[Tensor, Tensor]:
    """The targets of one batch padded to ``width`` = N+1 positions: arcs ``[B, N+1, N+1]`` and labels
    ``[B, N+1, R]``, float32, zero where padded."""
    n_rels = targets[0].labels.shape[-1]
    arcs = torch.zeros(len(targets), width, width)
    labels = torch.zeros(len(targets), width, n_rels)
    for b, t in enumerate(targets):
        n1 = t.arcs.shape[0]
        arcs[b, :n1, :n1] = t.arcs.float()
        labels[b, :n1] = t.labels.float()
    return arcs, labels


def targets_fingerprint(targets: Sequence[TeacherTargets]) -> str:
    """A short hash of the targets (what a resumed run must learn from again)."""
    digest = hashlib.sha256()
    for t in targets:
        digest.update(t.arcs.numpy().tobytes())
        digest.update(t.labels.numpy().tobytes())
    return f"{len(targets)} sentences, sha256 {digest.hexdigest()[:16]}"
