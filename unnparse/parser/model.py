"""The parser network: encoder X → the H/M/Y UNN of §5 → arc scores, tree marginals, loss and decoding.

Variables: X (observed encoder output), H (heads) and M (modifiers) with the relu regularizer (eq. 16), Y with the
structured tree-entropy regularizer (eq. 17). Factors: XH, XM (bilinear), HMY (trilinear, eq. 15) and a head bias
on Y. Each sweep updates H, M, Y in this order (eq. 19–20); with K = 1 and zero initialization this is exactly the
biaffine parser. The loss is −log p(gold tree) from the final Y's log-partition, which the same matrix-tree call
that gives Y provides (footnote 3). Beyond the paper, a biaffine classifier on the final H and M labels each arc.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unnparse.engine import (
    UNN,
    Bilinear,
    Dropout,
    FixedOrder,
    GroupedOrder,
    NonNegativeSquaredNorm,
    SquaredNorm,
    TreeEntropy,
    Variable,
)
from unnparse.parser.config import ParserModelConfig
from unnparse.parser.encoders import ScratchEncoder, TransformerEncoder
from unnparse.parser.factors import (
    DISTANCE_EDGES,
    ArcFactor,
    ArcHeadBiasFactor,
    ArcPositionFactor,
    signed_distance_buckets,
)
from unnparse.parser.features import Batch
from unnparse.structures import max_spanning_tree

__all__ = [
    "N_DISTANCE_BUCKETS",
    "ParserModel",
    "ParserOutput",
    "best_known_label",
    "build_parser_unn",
    "distance_buckets",
]

# distances 1, 2, 3, 4, 5-7, 8-15, 16+ on either side, and the arc from ROOT
N_DISTANCE_BUCKETS = 1 + 2 * len(DISTANCE_EDGES)


@dataclass
class ParserOutput:
    """What one forward pass computes."""

    scores: Tensor  # [B, N+1, N+1] final arc scores (pre-activation of Y)
    log_partition: Tensor | None  # [B]; None when the forward pass was asked for scores only
    marginals: Tensor | None  # [B, N+1, N+1] final Y; None when the forward pass was asked for scores only
    heads_repr: Tensor  # [B, N+1, d] final H
    mods_repr: Tensor  # [B, N+1, d] final M
    tag_logits: dict[str, Tensor] = field(default_factory=dict)  # column -> [B, N+1, n_tags]: taggers on X
    x: Tensor | None = None  # [B, N+1, dim] the encoder output X (after dropout)


def build_parser_unn(
    input_dim: int,
    hidden: int,
    *,
    dropout: float = 0.0,
    single_root: bool = True,
    arc_position: bool = False,
    head_bias: bool = True,
) -> UNN:
    """The factor graph of Fig. 2(d): X, H, M, Y with factors XH, XM, HMY (+ with ``head_bias`` a head bias on Y,
    and with ``arc_position`` a learned score of each arc's direction and length), named ``xh``, ``xm``, ``arc``,
    ``head_bias`` and ``arc_position`` (:meth:`UNN.factor`)."""
    return UNN(
        [
            Variable("X", SquaredNorm()),
            Variable("H", NonNegativeSquaredNorm(), bias_shape=(hidden,), mask_key="token_mask", dropout=dropout),
            Variable("M", NonNegativeSquaredNorm(), bias_shape=(hidden,), mask_key="token_mask", dropout=dropout),
            Variable("Y", TreeEntropy(lengths_key="lengths", single_root=single_root)),
        ],
        {
            "xh": Bilinear("X", "H", input_dim, hidden),
            "xm": Bilinear("X", "M", input_dim, hidden),
            "arc": ArcFactor("H", "M", "Y", hidden),
            **({"head_bias": ArcHeadBiasFactor("H", "Y", hidden)} if head_bias else {}),
            **({"arc_position": ArcPositionFactor("Y")} if arc_position else {}),
        },
    )


class ParserModel(nn.Module):
    """Encoder + UNN + relation classifier. ``config`` is the ``model`` part of a parser's config."""

    def __init__(
        self,
        encoder: nn.Module,
        n_rels: int,
        config: ParserModelConfig,
        *,
        tag_sizes: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.iterations = config.unn_iter
        hidden, rel_hidden = config.hidden, config.rel_hidden
        dropout = config.dropout
        self.single_root = config.single_root
        self.x_dropout = Dropout(dropout if config.x_dropout else 0.0)
        sizes = {name: n for name, n in (tag_sizes or {}).items() if n > 0}
        # tag_features: the parser and the relation classifier read X with the predicted tags' embeddings (the
        # expected embedding under the tagger's distribution, or the best tag's), as UDPipe 2 and Stanza read tags
        self.tag_features = config.tag_features
        feature_columns = [name for name in sizes if name != "lemma"] if self.tag_features != "none" else []
        x_dim = encoder.output_dim + config.tag_feature_dim * len(feature_columns)
        self.unn = build_parser_unn(
            x_dim,
            hidden,
            dropout=dropout,
            single_root=self.single_root,
            arc_position=config.arc_position,
            head_bias=config.head_bias,
        )
        # sequential: block coordinate descent (eq. 19-20); jacobi: H and M both from the previous sweep's state
        self.schedule = (
            FixedOrder(["H", "M", "Y"]) if config.update_order == "sequential" else GroupedOrder([("H", "M"), "Y"])
        )
        with torch.no_grad():
            if config.arc_init == "zero":  # biaffine weights start at 0 (uniform trees), as usual
                self.unn.factor("arc").weight.zero_()
            else:
                self.unn.factor("arc").weight.normal_(0.0, 0.01)
        self.rel_detach = config.rel_detach
        self.damping = {"H": config.damping, "M": config.damping} if config.damping else None
        # the relation classifier reads the final H and M, and (rel_from_x) the encoder's word vectors too
        self.rel_from_x = config.rel_from_x
        rel_in = hidden + (x_dim if self.rel_from_x else 0)
        self.rel_head = nn.Linear(rel_in, rel_hidden)
        self.rel_dep = nn.Linear(rel_in, rel_hidden)
        # rel_distance: the dependent's side of the biaffine also reads an embedding of where its head is (left or
        # right, how far; ROOT apart), so that a relation may depend on direction (subject before the verb, object
        # after) jointly with the head's features
        self.rel_distance = config.rel_distance
        self.rel_distance_emb = nn.Embedding(N_DISTANCE_BUCKETS, self.rel_distance) if self.rel_distance else None
        self.rel_weight = nn.Parameter(torch.zeros(n_rels, rel_hidden + 1, rel_hidden + 1 + self.rel_distance))
        self.rel_dropout = Dropout(dropout)
        # auxiliary tasks: predicting UPOS / XPOS / FEATS from X shapes the encoder towards syntax and morphology
        # (and fills those columns when parsing untagged text); tags in the input are never read
        # 0: taggers read X; L >= 1: they read the L-th layer of the scratch encoder's BiLSTM, so that the layers
        # above can build on what the lower ones learnt to tag
        self.tag_layer = config.tag_layer
        if self.tag_layer and not (
            isinstance(encoder, ScratchEncoder) and self.tag_layer <= len(encoder.lstm.forward_layers)
        ):
            raise ValueError(f"tag_layer {self.tag_layer} needs a scratch encoder with at least that many layers")
        self.tag_weights = {name: config.tag_loss(name) for name in sizes}
        self.taggers = nn.ModuleDict(
            {name: nn.Linear(encoder.output_dim, n) for name, n in sizes.items() if name != "lemma"}
        )
        n_chars = encoder.char_embed.num_embeddings if isinstance(encoder, ScratchEncoder) else 0
        self.lemmatizer = (
            LemmaClassifier(encoder.output_dim, sizes["lemma"], n_chars=n_chars, dropout=dropout)
            if "lemma" in sizes
            else None
        )
        self.tag_embeddings = nn.ModuleDict(
            {name: nn.Embedding(sizes[name], config.tag_feature_dim) for name in feature_columns}
        )
        for embedding in self.tag_embeddings.values():
            nn.init.normal_(embedding.weight, std=0.1)  # on the scale of the BiLSTM's outputs
        self._register_load_state_dict_pre_hook(_rename_single_tagger)

    # ------------------------------------------------------------------ forward
    def encode(self, batch: Batch) -> Tensor:
        """X: [B, N+1, dim]."""
        return self._encode(batch)[0]

    def _encode(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """X, and what the taggers read: X, or with ``tag_layer`` L the L-th BiLSTM layer's output."""
        if isinstance(self.encoder, ScratchEncoder):
            assert batch.words is not None and batch.chars is not None and batch.char_index is not None
            layers = self.encoder.layer_outputs(batch.words, batch.chars, batch.char_index, batch.lengths)
            return layers[-1], layers[self.tag_layer - 1] if self.tag_layer else layers[-1]
        if isinstance(self.encoder, TransformerEncoder):
            x = self.encoder(batch.forms, batch.max_words)
            return x, x
        raise TypeError(f"unsupported encoder {type(self.encoder).__name__}")

    def forward(self, batch: Batch, iterations: int | None = None, *, marginals: bool = True) -> ParserOutput:
        """Run the encoder and K sweeps of H, M, Y.

        With ``marginals=False`` (decoding only) the last update of Y computes its scores but not the tree marginals
        and log-partition, which nothing after it reads: one matrix-tree computation less, the same scores.
        """
        k = self.iterations if iterations is None else iterations
        x, tag_input = self._encode(batch)
        x = self.x_dropout(x).float()  # the UNN and the tree structures run in float32/64
        tag_input = self.x_dropout(tag_input).float() if self.tag_layer else x
        tag_logits = {name: tagger(tag_input) for name, tagger in self.taggers.items()}
        if self.lemmatizer is not None:
            tag_logits["lemma"] = self.lemmatizer(x, batch.chars, batch.char_index)
        if len(self.tag_embeddings):
            x = torch.cat([x, *(self._tag_feature(name, tag_logits[name]) for name in self.tag_embeddings)], dim=-1)
        B, n1, _ = x.shape
        d = self.unn.biases["H"].shape[0]
        context = {"lengths": batch.lengths, "token_mask": batch.token_mask.unsqueeze(-1)}
        zeros = x.new_zeros(B, n1, d)
        states = {"X": x, "H": zeros, "M": zeros, "Y": x.new_zeros(B, n1, n1)}
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = self.unn.infer(
                states, self.schedule, k, context=context, activate_last=marginals, damping=self.damping
            )
        return ParserOutput(
            scores=out.preactivations["Y"],
            log_partition=out.aux["Y"] if marginals else None,
            marginals=out.states["Y"] if marginals else None,
            heads_repr=out.states["H"],
            mods_repr=out.states["M"],
            tag_logits=tag_logits,
            x=x,
        )

    def _tag_feature(self, name: str, logits: Tensor) -> Tensor:
        """The embedding of column ``name``'s predicted tags: expected under the tagger's distribution (soft), or
        the best known tag's (hard: no gradient reaches the tagger through it)."""
        weight = self.tag_embeddings[name].weight  # [n_tags, dim]
        if self.tag_features == "soft":
            feature = torch.softmax(logits.float(), dim=-1) @ weight
        else:
            best = logits.detach()[..., 1:].argmax(-1) + 1  # never the unknown tag
            feature = weight[best]
        return self.x_dropout(feature)

    def y_message_sizes(self, out: ParserOutput, batch: Batch) -> dict[str, Tensor]:
        """Squared sizes (summed over the real words) of what drives H and M at the final state of ``out`` (a forward
        pass with marginals): ``x_to_h``, ``y_to_h`` (the arc and head-bias messages: what Y tells H), ``x_to_m``,
        ``y_to_m``. With K = 1 the Y messages are never used; with K > 1 they are what a second sweep adds to X's.
        """
        if out.marginals is None or out.x is None:
            raise ValueError("y_message_sizes needs a forward pass with marginals")
        states = {"X": out.x, "H": out.heads_repr, "M": out.mods_repr, "Y": out.marginals}
        context = {"lengths": batch.lengths, "token_mask": batch.token_mask.unsqueeze(-1)}
        mask = batch.token_mask.unsqueeze(-1).to(out.x.dtype)
        sizes = {}
        for var in ("H", "M"):
            messages = self.unn.messages_into(var, states, context)
            from_x = messages.pop("xh" if var == "H" else "xm")
            from_y = sum(messages.values(), torch.zeros_like(from_x))
            sizes[f"x_to_{var.lower()}"] = ((from_x * mask) ** 2).sum()
            sizes[f"y_to_{var.lower()}"] = ((from_y * mask) ** 2).sum()
        return sizes

    def relation_logits(self, out: ParserOutput, heads: Tensor) -> Tensor:
        """[B, N+1, n_rels]: label scores of each word's arc from ``heads``.

        A biaffine classifier on the final H (of the head) and M (of the dependent), each concatenated with the
        word's encoder vector X when the model was built with ``rel_from_x``; with ``rel_distance`` the dependent's
        side also holds an embedding of its head's direction and distance (:func:`distance_buckets`).
        """
        h_in, m_in = out.heads_repr, out.mods_repr
        x = out.x
        if self.rel_detach:  # the labels do not shape the UNN or the encoder
            h_in, m_in, x = h_in.detach(), m_in.detach(), None if x is None else x.detach()
        if self.rel_from_x:
            assert x is not None
            h_in, m_in = torch.cat([h_in, x], dim=-1), torch.cat([m_in, x], dim=-1)
        h = self.rel_dropout(F.elu(self.rel_head(h_in)))
        m = self.rel_dropout(F.elu(self.rel_dep(m_in)))
        h = torch.cat([h, h.new_ones(*h.shape[:-1], 1)], dim=-1)
        m_parts = [m, m.new_ones(*m.shape[:-1], 1)]
        if self.rel_distance_emb is not None:
            m_parts.append(self.rel_distance_emb(distance_buckets(heads)).to(m.dtype))
        m = torch.cat(m_parts, dim=-1)
        h_of_head = h.gather(1, heads.unsqueeze(-1).expand(-1, -1, h.shape[-1]))  # [B, N+1, r+1]
        if torch.is_grad_enabled():
            return torch.einsum("bni,rij,bnj->bnr", h_of_head, self.rel_weight, m)
        return _bilinear_in_blocks(h_of_head, self.rel_weight, m)

    # ------------------------------------------------------------------ loss and decoding
    def loss(
        self,
        out: ParserOutput,
        batch: Batch,
        *,
        teacher: tuple[Tensor, Tensor] | None = None,
        teacher_weight: float = 0.5,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(total, arc, relation) losses, each averaged over the words of the batch.

        With ``teacher`` = (arc marginals ``[B, N+1, N+1]``, label probabilities ``[B, N+1, R]``) of a teacher
        (:mod:`unnparse.parser.distillation`), the arc and relation losses are ``(1 − teacher_weight)`` times the
        gold ones plus ``teacher_weight`` times the cross-entropies against the teacher's: for the arcs, the
        student's expected −log p(tree) under the teacher's tree distribution, ``log Z − Σ μ(h→d) s(h→d)``.
        """
        assert batch.heads is not None and batch.rels is not None
        mask = batch.word_mask
        n_words = mask.sum().clamp_min(1)
        gold = out.scores.gather(1, batch.heads.unsqueeze(1)).squeeze(1)  # [B, N+1]: score of head(d) -> d
        gold_score = (gold.double() * mask).sum(-1)
        if out.log_partition is None:
            raise ValueError("the loss needs the log-partition: run the forward pass with marginals=True")
        log_z = out.log_partition.double()
        arc = (log_z - gold_score).sum() / n_words
        logits = self.relation_logits(out, batch.heads)
        rel = F.cross_entropy(logits[mask].float(), batch.rels[mask], reduction="sum") / n_words
        if teacher is not None:
            arcs, labels = teacher
            words = mask.unsqueeze(1).double()  # [B, 1, N+1]: the dependents that count
            expected = (arcs.double() * out.scores.double() * words).sum((1, 2))
            arc_teacher = (log_z - expected).sum() / n_words
            log_probs = F.log_softmax(logits[mask].float(), dim=-1)
            rel_teacher = -(labels[mask].float() * log_probs).sum() / n_words
            arc = (1 - teacher_weight) * arc + teacher_weight * arc_teacher
            rel = (1 - teacher_weight) * rel + teacher_weight * rel_teacher
        total = arc.to(rel.dtype) + rel
        for name, logits in out.tag_logits.items():
            weight = self.tag_weights.get(name, 0.0)
            if weight > 0 and batch.tags is not None and name in batch.tags:
                gold_tags = batch.tags[name][mask]
                tag = F.cross_entropy(logits[mask].float(), gold_tags, ignore_index=0, reduction="sum")
                total = total + weight * tag / n_words
        return total, arc.detach(), rel.detach()

    @torch.no_grad()
    def predict_tags(self, out: ParserOutput, batch: Batch) -> dict[str, Tensor]:
        """Column -> [B, N+1] best tag id of each word (never 0, the unknown tag), for each tagger of the model."""
        return {name: best_known_label(logits, batch.word_mask) for name, logits in out.tag_logits.items()}

    @torch.no_grad()
    def decode(self, out: ParserOutput, batch: Batch) -> tuple[Tensor, Tensor]:
        """Single-root maximum spanning trees of the final scores, and the best label of each chosen arc."""
        heads = max_spanning_tree(out.scores.float(), batch.lengths, single_root=self.single_root)
        return heads, best_known_label(self.relation_logits(out, heads), batch.word_mask)


class LemmaClassifier(nn.Module):
    """The lemmatizer: scores of each word's edit script (:mod:`unnparse.parser.lemma_scripts`).

    A character BiLSTM reads each form (its suffix and prefix decide most scripts), an MLP reads that with the
    word's contextual vector X (which tells the word's use in the sentence). X is read without letting the lemma
    loss shape it, so that the parser's representation serves parsing; with an encoder that has no character
    vocabulary (a pretrained transformer) the MLP reads X alone.
    """

    def __init__(
        self, x_dim: int, n_scripts: int, *, n_chars: int = 0, char_dim: int = 32, hidden: int = 64, dropout: float
    ) -> None:
        super().__init__()
        self.char_embed = nn.Embedding(n_chars, char_dim, padding_idx=0) if n_chars else None
        self.char_lstm = nn.LSTM(char_dim, hidden, batch_first=True, bidirectional=True) if n_chars else None
        in_dim = x_dim + (2 * hidden if n_chars else 0)
        self.hidden = nn.Linear(in_dim, 256)
        self.out = nn.Linear(256, n_scripts)
        self.dropout = dropout

    def forward(self, x: Tensor, chars: Tensor | None, char_index: Tensor | None) -> Tensor:
        """[B, N+1, n_scripts] from X [B, N+1, dim], the batch's distinct forms ``chars`` [U, C] and ``char_index``
        [B, N+1] (which row of ``chars`` each word is)."""
        parts = [x.detach()]
        if self.char_lstm is not None and self.char_embed is not None and chars is not None and char_index is not None:
            lengths = (chars != 0).sum(1).clamp_min(1)
            packed = nn.utils.rnn.pack_padded_sequence(
                self.char_embed(chars), lengths.cpu(), batch_first=True, enforce_sorted=False
            )
            _, (last, _) = self.char_lstm(packed)  # [2, U, hidden]
            parts.append(torch.cat([last[0], last[1]], dim=-1)[char_index].to(x.dtype))
        z = F.dropout(torch.cat(parts, dim=-1), self.dropout, self.training)
        return self.out(F.dropout(F.relu(self.hidden(z)), self.dropout, self.training))


#: Rows of the relation classifier's bilinear form computed at a time when parsing (see :func:`_bilinear_in_blocks`).
BILINEAR_BLOCK = 128


def _bilinear_in_blocks(h: Tensor, weight: Tensor, m: Tensor, block: int = BILINEAR_BLOCK) -> Tensor:
    """``einsum("bni,rij,bnj->bnr", h, weight, m)`` a block of ``block`` positions at a time: the intermediate
    ``h W`` of a block ([block, r, j]) stays in the CPU's cache, where all positions' at once would not."""
    B, n, i = h.shape
    r, _, j = weight.shape
    rows_h, rows_m = h.reshape(B * n, i), m.reshape(B * n, j)
    flat = weight.permute(1, 0, 2).reshape(i, r * j)
    out = h.new_empty(B * n, r)
    for start in range(0, B * n, block):
        hw = (rows_h[start : start + block] @ flat).view(-1, r, j)
        out[start : start + block] = torch.bmm(hw, rows_m[start : start + block].unsqueeze(-1)).squeeze(-1)
    return out.view(B, n, r)


def _rename_single_tagger(state_dict: dict[str, Tensor], prefix: str, *_: Any) -> None:
    """Models saved before XPOS/FEATS taggers existed name their UPOS tagger ``tagger``: load it as ``taggers.upos``."""
    for part in ("weight", "bias"):
        old = f"{prefix}tagger.{part}"
        if old in state_dict:
            state_dict[f"{prefix}taggers.upos.{part}"] = state_dict.pop(old)


def distance_buckets(heads: Tensor) -> Tensor:
    """[B, N+1] bucket of each word's arc from ``heads`` [B, N+1]: 0 for an arc from ROOT (and at ROOT's own
    position 0, or for a word that is its own head), 1-7 for a head to the left at distance 1, 2, 3, 4, 5-7, 8-15,
    16 or more, 8-14 likewise for a head to the right (the buckets of :class:`ArcPositionFactor`)."""
    positions = torch.arange(heads.shape[-1], device=heads.device)
    buckets = signed_distance_buckets(positions - heads, DISTANCE_EDGES)
    return buckets.masked_fill((heads == 0) | (positions == 0), 0)


def best_known_label(logits: Tensor, word_mask: Tensor) -> Tensor:
    """[B, N+1] best label of each word, never index 0 (the unknown entry); 0 at ROOT and padding."""
    logits = logits.clone()
    logits[..., 0] = float("-inf")
    return logits.argmax(-1).masked_fill(~word_mask, 0)
