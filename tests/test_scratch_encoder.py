"""The scratch encoder's unpacked BiLSTM equals PyTorch's packed bidirectional LSTM at every real position; the
character BiLSTM gives each form the final states of a bidirectional LSTM run on that form alone."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from unnparse.parser.encoders import CharBiLSTM, PaddedBiLSTM, ScratchEncoder


def test_reversal_index_flips_inside_each_length_only():
    index = PaddedBiLSTM.reversal_index(torch.tensor([3, 1, 5]), 5)
    assert index.tolist() == [[2, 1, 0, 3, 4], [0, 1, 2, 3, 4], [4, 3, 2, 1, 0]]


@pytest.mark.parametrize("layers", [1, 3])
def test_padded_bilstm_equals_packed_bidirectional_lstm(layers):
    torch.manual_seed(0)
    B, T, d_in, hidden = 5, 9, 7, 6
    lengths = torch.tensor([9, 4, 1, 7, 9])
    ours = PaddedBiLSTM(d_in, hidden, layers=layers, dropout=0.0).double()
    ref = nn.LSTM(d_in, hidden, num_layers=layers, batch_first=True, bidirectional=True).double()
    with torch.no_grad():  # same weights: layer i forward/backward of the reference = our i-th fwd/bwd LSTM
        for i in range(layers):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(ref, f"{name}_l{i}").copy_(getattr(ours.forward_layers[i], f"{name}_l0"))
                getattr(ref, f"{name}_l{i}_reverse").copy_(getattr(ours.backward_layers[i], f"{name}_l0"))
    x = torch.randn(B, T, d_in, dtype=torch.float64, requires_grad=True)
    got = ours(x, lengths)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    want, _ = pad_packed_sequence(ref(packed)[0], batch_first=True, total_length=T)
    mask = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)
    torch.testing.assert_close(got * mask, want * mask)
    # gradients reach the inputs of real positions only, and equal the reference's
    (g_ours,) = torch.autograd.grad((got * mask).sum(), x)
    (g_ref,) = torch.autograd.grad((want * mask).sum(), x)
    torch.testing.assert_close(g_ours, g_ref)
    assert float(g_ours[1, 4:].abs().sum()) == 0.0


def test_char_bilstm_gives_final_states_of_each_form_alone():
    torch.manual_seed(0)
    char_dim, hidden = 5, 4
    chars = torch.tensor([[0, 0, 0, 0], [3, 0, 0, 0], [4, 5, 6, 7], [8, 9, 0, 0]])
    emb = torch.randn(10, char_dim, dtype=torch.float64)
    ours = CharBiLSTM(char_dim, hidden).double()
    got = ours(emb[chars], chars)
    assert got.shape == (4, 2 * hidden)
    fwd, bwd = ours.lstm.forward_layers[0], ours.lstm.backward_layers[0]
    for u in range(1, 4):
        form = emb[chars[u][chars[u] != 0]].unsqueeze(0)  # [1, L, dim], no padding at all
        _, (h_fwd, _) = fwd(form)
        _, (h_bwd, _) = bwd(form.flip(1))
        torch.testing.assert_close(got[u], torch.cat([h_fwd[0, 0], h_bwd[0, 0]]))


@pytest.mark.parametrize("char_encoder", ["cnn", "lstm"])
def test_scratch_encoder_output_ignores_padding(char_encoder):
    torch.manual_seed(0)
    enc = ScratchEncoder(20, 12, word_dim=6, char_dim=5, char_filters=8, hidden=7, layers=2, char_encoder=char_encoder)
    enc.eval()
    chars = torch.tensor([[0, 0, 0], [2, 0, 0], [3, 4, 5], [6, 7, 0]])
    words = torch.tensor([[1, 3, 4, 5]])
    index = torch.tensor([[1, 2, 3, 2]])
    alone = enc(words, chars, index, torch.tensor([3]))
    padded = enc(
        torch.tensor([[1, 3, 4, 5, 0, 0], [1, 6, 0, 0, 0, 0]]),
        chars,
        torch.tensor([[1, 2, 3, 2, 0, 0], [1, 3, 0, 0, 0, 0]]),
        torch.tensor([3, 1]),
    )
    assert alone.shape[-1] == 14
    torch.testing.assert_close(padded[0, :4], alone[0])


def test_scratch_encoder_rejects_unknown_char_encoder():
    with pytest.raises(ValueError, match="char_encoder"):
        ScratchEncoder(10, 10, char_encoder="gru")
