"""Dropout masks from uniform numbers: the rate, the scale, the gradient, evaluation mode and seeding."""

from __future__ import annotations

import pytest
import torch

from unnparse.engine import Dropout, dropout_mask


@pytest.mark.parametrize("p", [0.2, 0.33, 0.5])
def test_mask_drops_at_the_rate_and_keeps_the_expectation(p):
    torch.manual_seed(0)
    mask = dropout_mask(torch.empty(200_000), p)
    kept = mask != 0
    # 200k draws: the dropped share is within 5 standard deviations of p
    assert abs(float((~kept).float().mean()) - p) < 5 * (p * (1 - p) / 200_000) ** 0.5
    torch.testing.assert_close(mask[kept], torch.full_like(mask[kept], 1 / (1 - p)))
    assert abs(float(mask.mean()) - 1.0) < 0.01


def test_mask_follows_dtype_device_and_generator():
    like = torch.zeros(3, 50, dtype=torch.bfloat16)
    a = dropout_mask(like, 0.5, generator=torch.Generator().manual_seed(7))
    b = dropout_mask(like, 0.5, generator=torch.Generator().manual_seed(7))
    c = dropout_mask(like, 0.5, generator=torch.Generator().manual_seed(8))
    assert a.dtype == torch.bfloat16 and a.shape == like.shape
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert set(a.float().unique().tolist()) <= {0.0, 2.0}


@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_rejects_probabilities_outside_zero_one(p):
    with pytest.raises(ValueError, match="dropout probability"):
        dropout_mask(torch.zeros(2), p)
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(p)


def test_module_multiplies_by_one_mask_and_passes_its_gradient():
    torch.manual_seed(0)
    drop = Dropout(0.4)
    x = torch.randn(4, 7, 30, dtype=torch.float64, requires_grad=True)
    y = drop(x)
    mask = torch.where(y != 0, y / x, torch.zeros_like(y)).detach()
    assert set(torch.round(mask, decimals=6).unique().tolist()) <= {0.0, round(1 / 0.6, 6)}
    assert 0.3 < float((mask == 0).double().mean()) < 0.5
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(grad, mask)


def test_module_is_the_identity_in_evaluation_mode_and_at_zero():
    x = torch.randn(5, 6)
    assert Dropout(0.5).eval()(x) is x
    assert Dropout(0.0).train()(x) is x
    assert "p=0.5" in repr(Dropout(0.5))
