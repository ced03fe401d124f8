"""The scratch encoder's unpacked BiLSTM equals PyTorch's packed bidirectional LSTM at every real position."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from unnparse.parser.encoders import PaddedBiLSTM


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
