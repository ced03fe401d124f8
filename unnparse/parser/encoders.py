"""Word encoders: they turn a batch of sentences into X, one vector per word plus the ROOT vector at index 0.

* :class:`ScratchEncoder` — word + character embeddings and a BiLSTM, trained from scratch: no download, trains on
  a CPU in minutes (the embedded default).
* :class:`TransformerEncoder` — any HuggingFace encoder (paper: bert-base-multilingual-cased), fine-tuned or
  frozen. Word vectors pool the word's subwords (first or mean); the CLS vector is the ROOT. Sentences longer than
  the encoder's maximum positions are encoded in overlapping windows, never truncated.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from unnparse.engine.dropout import Dropout
from unnparse.model_files import Limit, ModelFileError, check_config, read_json_file
from unnparse.parser.config import EncoderConfig, ScratchEncoderConfig, TransformerEncoderConfig
from unnparse.runtime import lstm_bfloat16_supported

__all__ = [
    "CharBiLSTM",
    "EncoderLoadError",
    "PaddedBiLSTM",
    "ScratchEncoder",
    "TransformerEncoder",
    "build_encoder",
    "check_no_code",
]

#: Padded subword positions a transformer reads in one call: more windows than that are run in groups, so that a
#: batch of absurd words (each read as at most 100 characters, see ``features.clip_word``) cannot exhaust memory.
WINDOW_TOKENS = 32768
#: Files that are code: a saved encoder directory holding one is refused.
_CODE_SUFFIXES = frozenset({".py", ".pyc", ".pyo", ".pyd", ".so", ".dylib", ".dll", ".pth", ".pkl", ".pickle"})
_MAX_ENCODER_JSON_BYTES = 256 << 20
_BIG = 1 << 20
#: Sizes in a saved transformer config.json: generous for every real encoder, small enough to build on a machine.
ENCODER_CONFIG_LIMITS = {
    key: Limit(int, 1, high, optional=True)
    for key, high in (
        ("hidden_size", 65536),
        ("dim", 65536),
        ("d_model", 65536),
        ("num_hidden_layers", 256),
        ("n_layers", 256),
        ("num_layers", 256),
        ("num_attention_heads", 1024),
        ("n_heads", 1024),
        ("intermediate_size", 262144),
        ("hidden_dim", 262144),
        ("vocab_size", 4 * _BIG),
        ("max_position_embeddings", _BIG),
    )
}


class EncoderLoadError(Exception):
    """A pretrained encoder could not be loaded (one clear line)."""


def check_no_code(directory: str | os.PathLike[str], *, strict: bool = True) -> None:
    """Refuse an encoder directory that refers to code, before transformers reads it: a code file (``.py``...), a
    JSON file with an ``auto_map``, a ``model_type`` that transformers does not implement itself, sizes out of range
    (:data:`ENCODER_CONFIG_LIMITS`), and when ``strict`` (a saved model's encoder) a symbolic link or subdirectory.

    Raises:
        ModelFileError: one line naming the file.
    """
    root = Path(directory)
    if not root.is_dir():
        raise ModelFileError(f"{root}: missing (the model directory is incomplete)")
    entries = sorted(root.iterdir())
    for path in entries:
        if path.suffix.lower() in _CODE_SUFFIXES:
            raise ModelFileError(f"{path}: the encoder comes with code, which unnparse never runs")
        if strict and (path.is_symlink() or not path.is_file()):
            raise ModelFileError(f"{path}: an encoder directory holds plain files only")
    parsed: dict[str, Any] = {}
    for path in entries:
        if path.suffix != ".json" or not path.is_file():
            continue
        parsed[path.name] = data = read_json_file(path, max_bytes=_MAX_ENCODER_JSON_BYTES, what="encoder file")
        if isinstance(data, dict) and "auto_map" in data:
            raise ModelFileError(f"{path}: the encoder needs custom code (auto_map), which unnparse never runs")
    config_path = root / "config.json"
    if "config.json" not in parsed:
        raise ModelFileError(f"{config_path}: missing (the encoder directory is incomplete)")
    config = parsed["config.json"]
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if not isinstance(model_type, str) or not _native_model_type(model_type):
        raise ModelFileError(
            f"{config_path}: the encoder needs custom code (model_type {json.dumps(model_type)[:40]} is not one that "
            "transformers implements), which unnparse never runs"
        )
    check_config(config, ENCODER_CONFIG_LIMITS, config_path)


def _native_model_type(model_type: str) -> bool:
    """Whether transformers itself implements encoders of ``model_type`` (no registered or downloaded code)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    return model_type in CONFIG_MAPPING_NAMES and model_type in MODEL_MAPPING_NAMES


def _quiet_transformers() -> None:
    """No progress bars or advisory warnings from transformers on the user's terminal."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


class PaddedBiLSTM(nn.Module):
    """A multi-layer bidirectional LSTM over right-padded sequences, without packing.

    Each layer runs two unidirectional LSTMs on the padded batch: the forward one as is (padding comes after every
    real position, so it cannot reach them) and the backward one on each sequence reversed within its own length.
    Outputs at real positions are exactly those of a packed bidirectional LSTM; padding positions hold junk that
    callers mask. Unpacked LSTMs run as fused kernels (oneDNN on CPU, cuDNN on CUDA), which packed sequences do
    not get on CPU: about 1.4x more training words per second here.
    """

    def __init__(self, input_dim: int, hidden: int, *, layers: int, dropout: float) -> None:
        super().__init__()
        self.forward_layers = nn.ModuleList(
            nn.LSTM(input_dim if i == 0 else 2 * hidden, hidden, batch_first=True) for i in range(layers)
        )
        self.backward_layers = nn.ModuleList(
            nn.LSTM(input_dim if i == 0 else 2 * hidden, hidden, batch_first=True) for i in range(layers)
        )
        self.dropout = Dropout(dropout)

    @staticmethod
    def reversal_index(lengths: Tensor, width: int) -> Tensor:
        """[B, width]: position t of sequence b maps to ``lengths[b] - 1 - t`` inside the sequence, to t outside."""
        t = torch.arange(width, device=lengths.device).unsqueeze(0)
        lengths = lengths.unsqueeze(1)
        return torch.where(t < lengths, lengths - 1 - t, t)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """``x`` [B, T, input_dim] right-padded, ``lengths`` [B] → [B, T, 2·hidden]."""
        return self.layer_outputs(x, lengths)[-1]

    def layer_outputs(self, x: Tensor, lengths: Tensor) -> list[Tensor]:
        """The output of every layer, first to last, each [B, T, 2·hidden]."""
        outputs = []
        precision: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        device_type = x.device.type
        if (
            torch.is_autocast_enabled(device_type)
            and torch.get_autocast_dtype(device_type) == torch.bfloat16
            and not lstm_bfloat16_supported(device_type)
        ):  # no bfloat16 LSTM kernel here: the LSTMs run in float32
            precision, x = torch.autocast(device_type, enabled=False), x.float()
        index = self.reversal_index(lengths.to(x.device), x.shape[1])
        rows = (index + torch.arange(x.shape[0], device=x.device).unsqueeze(1) * x.shape[1]).reshape(-1)
        with precision:
            for i, (fwd, bwd) in enumerate(zip(self.forward_layers, self.backward_layers, strict=True)):
                if i > 0:
                    x = self.dropout(x)
                ahead, _ = fwd(x)
                back, _ = bwd(_SelfInversePermutation.apply(x, rows))
                back = _SelfInversePermutation.apply(back, rows)
                x = torch.cat([ahead, back], dim=-1)
                outputs.append(x)
        return outputs


class _SelfInversePermutation(torch.autograd.Function):
    """``x`` [B, T, D] with its B·T positions permuted by ``rows`` (flat indices), a permutation that is its own
    inverse (such as reversing each sequence within its length): the gradient is permuted by the same ``rows``.

    Whole rows of D values move (``index_select``), where an element-wise ``gather`` would read a [B, T, D] index and
    scatter-add its gradient: about 2.5x faster, forward and backward, on the CPU.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, rows: Tensor) -> Tensor:
        ctx.save_for_backward(rows)
        return x.reshape(-1, x.shape[-1]).index_select(0, rows).view(x.shape)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (rows,) = ctx.saved_tensors
        return grad.reshape(-1, grad.shape[-1]).index_select(0, rows).view(grad.shape), None


class CharBiLSTM(nn.Module):
    """Word vectors from characters: a one-layer BiLSTM over each form, the final state of each direction.

    Input ``chars`` [U, C] (right-padded with 0, at least one character per row but row 0, the padding row);
    output [U, 2·hidden]. Final states keep where a character stands (prefix, suffix), which max-pooled
    convolutions lose.
    """

    def __init__(self, char_dim: int, hidden: int) -> None:
        super().__init__()
        self.lstm = PaddedBiLSTM(char_dim, hidden, layers=1, dropout=0.0)
        self.hidden = hidden

    def forward(self, embedded: Tensor, chars: Tensor) -> Tensor:
        lengths = (chars != 0).sum(1).clamp_min(1)
        out = self.lstm(embedded, lengths)  # [U, C, 2h]
        last = out[torch.arange(out.shape[0], device=out.device), lengths - 1, : self.hidden]
        first = out[:, 0, self.hidden :]  # the backward direction has read the whole form at position 0
        return torch.cat([last, first], dim=-1)


class ScratchEncoder(nn.Module):
    """Word and character embeddings (character CNN or BiLSTM) followed by a multi-layer BiLSTM.

    Input: ``words`` [B, N+1] (index 0 of each row is the ROOT token), ``chars`` [U, C] (characters of each
    distinct form of the batch), ``char_index`` [B, N+1] (which row of ``chars``), ``lengths`` [B].
    Output: [B, N+1, 2·hidden].
    """

    def __init__(
        self,
        n_words: int,
        n_chars: int,
        *,
        word_dim: int = 100,
        char_dim: int = 50,
        char_filters: int = 100,
        hidden: int = 200,
        layers: int = 3,
        dropout: float = 0.33,
        word_dropout: float = 0.2,
        char_encoder: str = "cnn",
    ) -> None:
        super().__init__()
        if char_encoder not in ("cnn", "lstm"):
            raise ValueError(f"char_encoder must be 'cnn' or 'lstm', not {char_encoder!r}")
        self.word_embed = nn.Embedding(n_words, word_dim, padding_idx=0)
        self.char_embed = nn.Embedding(n_chars, char_dim, padding_idx=0)
        # ``char_filters`` is the size of a form's character vector: CNN filters, or twice the BiLSTM state
        self.char_conv = nn.Conv1d(char_dim, char_filters, kernel_size=3, padding=1) if char_encoder == "cnn" else None
        self.char_lstm = CharBiLSTM(char_dim, char_filters // 2) if char_encoder == "lstm" else None
        char_filters = 2 * (char_filters // 2) if char_encoder == "lstm" else char_filters
        self.lstm = PaddedBiLSTM(word_dim + char_filters, hidden, layers=layers, dropout=dropout)
        self.input_dropout = Dropout(dropout)
        self.word_dropout = word_dropout
        self.output_dim = 2 * hidden

    def forward(self, words: Tensor, chars: Tensor, char_index: Tensor, lengths: Tensor) -> Tensor:
        """``chars`` [U, C] holds each distinct form once; ``char_index`` [B, N+1] points into it."""
        return self.layer_outputs(words, chars, char_index, lengths)[-1]

    def layer_outputs(self, words: Tensor, chars: Tensor, char_index: Tensor, lengths: Tensor) -> list[Tensor]:
        """The output of every BiLSTM layer (the last is X), each [B, N+1, 2·hidden]."""
        if self.training and self.word_dropout > 0:
            drop = (torch.rand(words.shape, device=words.device) < self.word_dropout) & (words > 2)
            words = words.masked_fill(drop, 1)  # UNK
        w = self.word_embed(words)
        if self.char_lstm is not None:
            c = self.char_lstm(self.char_embed(chars), chars)  # [U, filters]
        else:
            assert self.char_conv is not None
            c = torch.relu(self.char_conv(self.char_embed(chars).transpose(1, 2)))  # [U, filters, C]
            c = c.masked_fill((chars == 0).unsqueeze(1), 0.0).amax(dim=2)  # [U, filters]
        c = c[char_index]  # [B, N+1, filters]
        x = self.input_dropout(torch.cat([w, c], dim=-1))
        return self.lstm.layer_outputs(x, lengths + 1)


class TransformerEncoder(nn.Module):
    """A HuggingFace encoder producing one vector per word (pooled subwords) and the CLS vector as ROOT."""

    def __init__(self, model: nn.Module, tokenizer: Any, *, pooling: str = "first", freeze: bool = False) -> None:
        super().__init__()
        if pooling not in ("first", "mean"):
            raise ValueError(f"pooling must be 'first' or 'mean', not {pooling!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.freeze = freeze
        if freeze:
            for p in self.model.parameters():
                p.requires_grad_(False)
        self.output_dim = int(model.config.hidden_size)
        max_pos = getattr(model.config, "max_position_embeddings", 512) or 512
        model_max = getattr(tokenizer, "model_max_length", max_pos) or max_pos
        self.max_length = int(min(max_pos, model_max, 4096))
        # room for the special tokens, and for models (RoBERTa) whose positions start after the padding index
        self.window = (
            self.max_length - 2 - (2 if getattr(model.config, "model_type", "") in ("roberta", "xlm-roberta") else 0)
        )
        self._cache: dict[str, list[int]] = {}

    @staticmethod
    def load(
        name_or_path: str, *, pooling: str = "first", freeze: bool = False, trust_remote_code: bool = False
    ) -> TransformerEncoder:
        """Load a pretrained encoder by hub name or local directory, with a one-line error when impossible.

        Code that comes with the encoder (``auto_map``, ``.py`` files) is never run unless ``trust_remote_code``;
        even then the architecture must be one that transformers implements itself, since a saved unnparse model is
        always rebuilt without running code (:meth:`from_saved`).

        Raises:
            EncoderLoadError: the encoder cannot be had, needs code it may not run, or has no fast tokenizer.
        """
        local = Path(name_or_path)
        if local.is_dir() and not trust_remote_code:
            try:
                check_no_code(local, strict=False)
            except ModelFileError as err:
                raise EncoderLoadError(
                    f"{err}; --trust-remote-code lets it run for training, but only an architecture that transformers "
                    "implements can be saved and loaded"
                ) from None
        try:
            from transformers import AutoModel, AutoTokenizer

            _quiet_transformers()
            tokenizer = AutoTokenizer.from_pretrained(name_or_path, use_fast=True, trust_remote_code=trust_remote_code)
            model = AutoModel.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        except Exception as err:  # OSError, ValueError, HTTP errors: all mean "cannot have it"
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            if "custom code" in reason or "trust_remote_code" in reason:
                raise EncoderLoadError(
                    f"encoder {name_or_path!r} needs custom code, which unnparse runs only with --trust-remote-code "
                    "(and only to train: its architecture must still be one that transformers implements)"
                ) from None
            hint = (
                "it is not a valid model directory"
                if local.exists()
                else "it is not in the local HuggingFace cache and the hub could not be reached"
            )
            raise EncoderLoadError(
                f"cannot load encoder {name_or_path!r}: {hint} ({reason[:160]}); "
                "pass --encoder PATH to a local model directory, or --encoder scratch"
            ) from None
        if not getattr(tokenizer, "is_fast", False):
            raise EncoderLoadError(f"encoder {name_or_path!r} has no fast tokenizer (needed for word alignment)")
        model_type = str(getattr(model.config, "model_type", ""))
        custom = [type(p).__name__ for p in (model, tokenizer) if not type(p).__module__.startswith("transformers.")]
        if custom or not _native_model_type(model_type):
            raise EncoderLoadError(
                f"encoder {name_or_path!r} needs custom code ({', '.join(custom) or f'model_type {model_type!r}'}): "
                "a saved unnparse model never runs code, so a parser trained on it could never be loaded"
            )
        return TransformerEncoder(model, tokenizer, pooling=pooling, freeze=freeze)

    @staticmethod
    def from_saved(directory: str | os.PathLike[str], *, pooling: str, freeze: bool) -> TransformerEncoder:
        """Rebuild the architecture from a saved config and tokenizer (weights are loaded by the caller).

        Never runs code from the directory, never reads stdin and never uses the network: a directory that refers to
        code (``auto_map``, ``.py`` files, a ``model_type`` that transformers does not implement) is refused before
        transformers reads it, and transformers is called with ``trust_remote_code=False`` and
        ``local_files_only=True``.

        Raises:
            ModelFileError: one line naming the file that refers to code, or that transformers cannot read.
        """
        check_no_code(directory)
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        _quiet_transformers()
        try:
            config = AutoConfig.from_pretrained(directory, trust_remote_code=False, local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(
                directory, use_fast=True, trust_remote_code=False, local_files_only=True
            )
            model = AutoModel.from_config(config, trust_remote_code=False)
        except Exception as err:
            reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
            raise ModelFileError(f"{directory}: corrupt encoder files ({reason})") from None
        if not getattr(tokenizer, "is_fast", False):
            raise ModelFileError(f"{directory}: the encoder has no fast tokenizer (needed for word alignment)")
        return TransformerEncoder(model, tokenizer, pooling=pooling, freeze=freeze)

    def save_pretrained_files(self, directory: str | os.PathLike[str]) -> None:
        """Write the encoder's config and tokenizer files (not its weights) into ``directory``, without any
        reference to code (``auto_map`` entries are left out, ``.py`` files are not written)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.model.config.save_pretrained(out)
        self.tokenizer.save_pretrained(out)
        for path in sorted(out.iterdir()):
            if path.suffix in _CODE_SUFFIXES:
                path.unlink()
            elif path.suffix == ".json":
                data = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(data, dict) and "auto_map" in data:
                    del data["auto_map"]
                    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def _word_pieces(self, word: str) -> list[int]:
        ids = self._cache.get(word)
        if ids is None:
            ids = self.tokenizer([word], is_split_into_words=True, add_special_tokens=False)["input_ids"]
            if not ids:
                ids = [self.tokenizer.unk_token_id if self.tokenizer.unk_token_id is not None else 0]
            if len(self._cache) < 200_000:
                self._cache[word] = ids
        return ids

    def _run_windows(self, ids: Tensor, att: Tensor) -> Tensor:
        """Last hidden states [windows, width, dim] of the windows, run in groups of at most :data:`WINDOW_TOKENS`
        padded tokens: one group for an ordinary batch, so that memory stays bounded for any batch."""
        per_call = max(1, WINDOW_TOKENS // max(1, ids.shape[1]))
        if ids.shape[0] <= per_call:
            return self.model(input_ids=ids, attention_mask=att).last_hidden_state
        groups = range(0, ids.shape[0], per_call)
        return torch.cat(
            [
                self.model(input_ids=ids[i : i + per_call], attention_mask=att[i : i + per_call]).last_hidden_state
                for i in groups
            ]
        )

    def forward(self, forms: Sequence[Sequence[str]], n_max: int) -> Tensor:
        """Encode sentences (lists of words) into [B, n_max+1, dim]; row 0 is ROOT (the CLS vector)."""
        device = next(self.model.parameters()).device
        tok = self.tokenizer
        cls_id = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
        sep_id = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
        windows: list[list[int]] = []
        # for each sentence: list of (window index, position in window) of every subword, and the word of each
        plan = []
        for words in forms:
            pieces: list[int] = []
            owner: list[int] = []
            for w_i, word in enumerate(words):
                ids = self._word_pieces(word)
                pieces.extend(ids)
                owner.extend([w_i] * len(ids))
            L, W = len(pieces), self.window
            starts = [0] if L <= W else list(range(0, L - W, W // 2)) + [L - W]
            first_window = len(windows)
            for s in starts:
                windows.append([cls_id, *pieces[s : s + W], sep_id])
            # each subword is read from the window where it is farthest from an edge
            where = [(first_window, p + 1) for p in range(L)] if len(starts) == 1 else []
            for p in range(L if len(starts) > 1 else 0):
                best = max(
                    range(len(starts)),
                    key=lambda k, p=p: (
                        min(p - starts[k], starts[k] + W - 1 - p) if starts[k] <= p < starts[k] + W else -1
                    ),
                )
                where.append((first_window + best, p - starts[best] + 1))
            plan.append((first_window, where, owner, len(words)))
        width = max(len(w) for w in windows)
        ids = torch.full((len(windows), width), pad_id, dtype=torch.long)
        att = torch.zeros((len(windows), width), dtype=torch.long)
        for i, w in enumerate(windows):
            ids[i, : len(w)] = torch.tensor(w)
            att[i, : len(w)] = 1
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            hidden = self._run_windows(ids.to(device), att.to(device))
        B, dim = len(forms), hidden.shape[-1]
        out = hidden.new_zeros(B, n_max + 1, dim)
        out[:, 0] = hidden[torch.tensor([first for first, *_ in plan], device=device), 0]  # ROOT: each first CLS
        win_idx, pos_idx, row_idx, col_idx = [], [], [], []
        for b, (_first, where, owner, _n_words) in enumerate(plan):
            for (wi, pi), o in zip(where, owner, strict=True):
                win_idx.append(wi)
                pos_idx.append(pi)
                row_idx.append(b)
                col_idx.append(o + 1)
        vectors = hidden[torch.tensor(win_idx, device=device), torch.tensor(pos_idx, device=device)]
        rows = torch.tensor(row_idx, device=device)
        cols = torch.tensor(col_idx, device=device)
        if self.pooling == "mean":
            flat = out.view(B * (n_max + 1), dim)
            target = rows * (n_max + 1) + cols
            summed = torch.zeros_like(flat).index_add(0, target, vectors)
            counts = torch.zeros(B * (n_max + 1), device=device, dtype=vectors.dtype).index_add(
                0, target, torch.ones_like(target, dtype=vectors.dtype)
            )
            mean = summed / counts.clamp_min(1).unsqueeze(-1)
            has = (counts > 0).unsqueeze(-1)
            out = torch.where(has, mean, flat).view(B, n_max + 1, dim)
        else:
            # the first subword of each word: the first occurrence of each (row, col) pair
            key = rows * (n_max + 1) + cols
            first = torch.ones_like(key, dtype=torch.bool)
            first[1:] = key[1:] != key[:-1]
            out = out.index_put((rows[first], cols[first]), vectors[first])
        return out


def build_encoder(
    config: EncoderConfig,
    *,
    n_words: int,
    n_chars: int,
    saved_dir: str | os.PathLike[str] | None = None,
    trust_remote_code: bool = False,
) -> nn.Module:
    """Construct the encoder that ``config`` describes (weights random or pretrained, see below).

    For a transformer encoder: with ``saved_dir`` the architecture is rebuilt from the saved files (weights come
    from the model file; no code ever runs); otherwise the pretrained weights are loaded by name or path, running
    code that comes with them only with ``trust_remote_code`` (see :meth:`TransformerEncoder.load`).
    """
    if isinstance(config, ScratchEncoderConfig):
        return ScratchEncoder(
            n_words,
            n_chars,
            word_dim=config.word_dim,
            char_dim=config.char_dim,
            char_filters=config.char_filters,
            hidden=config.hidden,
            layers=config.layers,
            dropout=config.dropout,
            word_dropout=config.word_dropout,
            char_encoder=config.char_encoder,
        )
    if not isinstance(config, TransformerEncoderConfig):
        raise TypeError(f"not an encoder config: {config!r}")
    if saved_dir is not None:
        return TransformerEncoder.from_saved(saved_dir, pooling=config.pooling, freeze=config.freeze)
    return TransformerEncoder.load(
        config.name, pooling=config.pooling, freeze=config.freeze, trust_remote_code=trust_remote_code
    )
