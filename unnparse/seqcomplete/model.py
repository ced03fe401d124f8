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
from unnparse.seqcomplete.config import CONFIG_LIMITS, MODEL_KIND, SeqConfig
from unnparse.seqcomplete.data import Batch
from unnparse.seqcomplete.factors import AttentionScoreFactor, AttentionValueFactor

__all__ = ["CONFIG_LIMITS", "MODEL_KIND", "SeqConfig", "SeqCompletionUNN", "sinusoidal_positions"]

HIDDEN = ("Q", "K", "V", "S", "H")


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
