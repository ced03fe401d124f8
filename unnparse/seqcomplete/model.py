"""Undirected self-attention for sequence completion (§4, eq. 13-14), declared on the shared engine.

Variables (rows are positions, ``d`` the hidden size): X [n, d] (½‖·‖², masked rows updated, the others observed
through the engine's ``clamp_key``), Q, K, V, H [n, d] (½‖·‖²) and S [n, n] (row-wise softmax with entropy scaled
by √d, padding excluded through ``mask_key``: S rows and columns of padded positions are 0). Factors: X–Q, X–K,
X–V bilinear with the sinusoidal positions P added to X inside them (``input_offset_key``), Q–K–S and S–V–H the
two attention factors. Trained parameters: W_Q, W_K, W_V and the embeddings only.

X starts as the token embeddings; masked rows start from a learned "mask" embedding (row ``vocab + 1`` of the
table; row 0 is padding, never used). After the sweeps, each masked row is scored against the token embeddings
(tied output: logits = X̄ Eᵀ). The embeddings start as N(0, 1/√d) entries, which keeps the initial logits small
(with N(0, 1) the first epochs are lost to saturated logits).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

from unnparse.engine import (
    UNN,
    Bilinear,
    Inference,
    RandomPermutation,
    Schedule,
    SoftmaxEntropy,
    SquaredNorm,
    Variable,
    forward_backward,
)
from unnparse.model_files import Limit, config_field, field_limits
from unnparse.seqcomplete.data import Batch
from unnparse.seqcomplete.factors import AttentionScoreFactor, AttentionValueFactor

__all__ = ["CONFIG_LIMITS", "MODEL_KIND", "SeqConfig", "SeqCompletionUNN", "sinusoidal_positions"]

MODEL_KIND = "seqcomplete"
HIDDEN = ("Q", "K", "V", "S", "H")
#: sweeps used at evaluation by a model trained with a random number of sweeps (App. B)
RANDOM_ITER_EVAL = 3
RANDOM_ITER_MAX = 5


@dataclass
class SeqConfig:
    """Hyperparameters of the sequence-completion UNN (stored in ``config.json``)."""

    # each with the values a saved config.json may hold (absent keys take the default): see field_limits
    vocab: int = config_field(64, Limit(int, 1, 1_000_000, optional=True))
    dim: int = config_field(256, Limit(int, 2, 65536, optional=True))
    unn_iter: int = config_field(1, Limit(int, 1, 100, optional=True))
    order: str = config_field("fb", Limit(str, choices=("fb", "random"), optional=True))
    random_iter: bool = config_field(False, Limit(bool, optional=True))
    #: seeds the random order at evaluation time, so that predictions are reproducible (any value
    #: torch.Generator.manual_seed takes)
    seed: int = config_field(0, Limit(int, -(2**63), 2**64 - 1, optional=True))

    def __post_init__(self) -> None:
        if self.order not in ("fb", "random"):
            raise ValueError(f"order must be fb or random, got {self.order!r}")
        if self.unn_iter < 1 or self.dim < 2 or self.dim % 2 or self.vocab < 1:
            raise ValueError(f"need unn_iter >= 1, an even dim >= 2 and vocab >= 1; got {self}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeqConfig:
        """Build from a (possibly larger) dict such as a saved ``config.json``."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return asdict(self)

    @property
    def eval_iter(self) -> int:
        """Sweeps at evaluation: k, or 3 for a model trained with a random k (App. B)."""
        return RANDOM_ITER_EVAL if self.random_iter else self.unn_iter


#: The accepted values of a saved sequence-completion model's config.json (keys left out take :class:`SeqConfig`'s
#: defaults), declared beside the fields of :class:`SeqConfig`.
CONFIG_LIMITS: dict[str, Limit] = field_limits(SeqConfig)


def sinusoidal_positions(n: int, dim: int, *, device: torch.device | None = None) -> Tensor:
    """The sine/cosine position encodings of Vaswani et al. (2017): [n, dim]."""
    pos = torch.arange(n, dtype=torch.float32, device=device)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim))
    out = torch.zeros(n, dim, device=device)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq)
    return out


class SeqCompletionUNN(nn.Module):
    """Undirected self-attention over a token sequence, with a tied output layer."""

    def __init__(self, config: SeqConfig) -> None:
        super().__init__()
        self.config = config
        d = config.dim
        self.embedding = nn.Embedding(config.vocab + 2, d)
        nn.init.normal_(self.embedding.weight, std=d**-0.25)
        self.unn = UNN(
            [
                Variable("X", SquaredNorm(), clamp_key="x_observed"),
                *(Variable(v, SquaredNorm()) for v in "QKV"),
                Variable("S", SoftmaxEntropy(scale=math.sqrt(d), mask_key="attn_mask")),
                Variable("H", SquaredNorm()),
            ],
            [
                Bilinear("X", "Q", d, d, input_offset_key="positions"),
                Bilinear("X", "K", d, d, input_offset_key="positions"),
                Bilinear("X", "V", d, d, input_offset_key="positions"),
                AttentionScoreFactor("Q", "K", "S"),
                AttentionValueFactor("S", "V", "H"),
            ],
        )

    @property
    def mask_index(self) -> int:
        """Embedding row of the mask token."""
        return self.config.vocab + 1

    def schedule(self) -> Schedule:
        """Forward-backward Q,K,V,S,H,S,V,K,Q,X or a random permutation of Q,K,V,S,H then X (App. B)."""
        if self.config.order == "fb":
            return forward_backward(HIDDEN, tail=["X"])
        return RandomPermutation(HIDDEN, tail=["X"])

    def context(self, batch: Batch) -> dict[str, Tensor]:
        """Engine context: positions P, the attention mask (no padded query or key) and the observed X rows."""
        valid = batch.valid
        n = batch.tokens.shape[1]
        return {
            "positions": sinusoidal_positions(n, self.config.dim, device=batch.tokens.device),
            "attn_mask": valid[:, :, None] & valid[:, None, :],
            "x_observed": ~batch.masked[:, :, None],
        }

    def initial_states(self, batch: Batch) -> dict[str, Tensor]:
        """X: embeddings, the mask embedding on masked rows; Q, K, V, S, H: zeros."""
        tokens = torch.where(batch.masked, torch.full_like(batch.tokens, self.mask_index), batch.tokens)
        x = self.embedding(tokens)
        b, n, d = x.shape
        states = {"X": x}
        for name in HIDDEN:
            states[name] = x.new_zeros((b, n, n) if name == "S" else (b, n, d))
        return states

    def infer(
        self,
        batch: Batch,
        *,
        sweeps: int | None = None,
        schedule: Schedule | None = None,
        generator: torch.Generator | None = None,
        trace: bool = False,
    ) -> Inference:
        """Run ``sweeps`` (default: :attr:`SeqConfig.eval_iter`) sweeps of ``schedule`` (default
        :meth:`schedule`). A random order uses ``generator``, by default one seeded with ``config.seed``."""
        if generator is None and self.config.order == "random":
            generator = torch.Generator().manual_seed(self.config.seed)
        return self.unn.infer(
            self.initial_states(batch),
            schedule or self.schedule(),
            self.config.eval_iter if sweeps is None else sweeps,
            context=self.context(batch),
            generator=generator,
            trace_states=trace,
        )

    def logits(self, x: Tensor) -> Tensor:
        """Scores of tokens 1..vocab for rows of X: X Eᵀ (class c - 1 is token c)."""
        return x @ self.embedding.weight[1 : self.config.vocab + 1].T

    def forward(self, batch: Batch, *, sweeps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Token logits [B, n, vocab] of every position (only masked ones are meaningful)."""
        return self.logits(self.infer(batch, sweeps=sweeps, generator=generator).states["X"])

    @torch.no_grad()
    def complete(self, batch: Batch, *, sweeps: int | None = None) -> Tensor:
        """The tokens with every masked position replaced by its prediction."""
        pred = self(batch, sweeps=sweeps).argmax(-1) + 1
        return torch.where(batch.masked, pred, batch.tokens)
