"""Run-time helpers: the fused Adam/AdamW and its fallback."""

from __future__ import annotations

import pytest
import torch

from unnparse.runtime import adam, denormals_flushed


@pytest.mark.parametrize("decoupled", [False, True])
def test_fused_adam_makes_the_same_updates_as_the_default_one(decoupled):
    torch.manual_seed(0)
    start = [torch.randn(7, 5), torch.randn(5)]
    fast = [torch.nn.Parameter(t.clone()) for t in start]
    plain = [torch.nn.Parameter(t.clone()) for t in start]
    options = {"lr": 1e-2, "betas": (0.9, 0.9), "weight_decay": 0.01}
    opt_fast = adam(fast, decoupled=decoupled, **options)
    opt_plain = (torch.optim.AdamW if decoupled else torch.optim.Adam)(plain, **options)
    assert type(opt_fast) is type(opt_plain) and opt_fast.defaults["fused"] and not opt_plain.defaults.get("fused")
    for step in range(5):
        grads = [torch.randn_like(t) for t in start]
        for params, opt in ((fast, opt_fast), (plain, opt_plain)):
            for p, g in zip(params, grads, strict=True):
                p.grad = g.clone()
            opt.step()
        for a, b in zip(fast, plain, strict=True):
            torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-5, atol=1e-6, msg=f"step {step}")


def test_adam_falls_back_where_there_is_no_fused_kernel(monkeypatch):
    class NoFusedAdam(torch.optim.Adam):
        def __init__(self, params, fused=None, **options):
            if fused:
                raise RuntimeError("`fused=True` requires all the params to be on a supported device")
            super().__init__(params, **options)

    monkeypatch.setattr(torch.optim, "Adam", NoFusedAdam)
    param = torch.nn.Parameter(torch.ones(3))
    opt = adam([param], lr=0.1)
    assert isinstance(opt, NoFusedAdam) and not opt.defaults.get("fused")
    param.grad = torch.ones(3)
    opt.step()
    torch.testing.assert_close(param.detach(), torch.full((3,), 0.9))


def test_denormals_are_flushed_inside_the_decorated_function_only():
    denormal = torch.tensor([1e-39], dtype=torch.float32)  # below float32's smallest normal number
    assert (denormal * 1.0).item() != 0.0

    @denormals_flushed
    def inside(scale: float) -> float:
        return (denormal * scale).item()

    @denormals_flushed
    def failing() -> None:
        raise KeyError("boom")

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush denormals")
    assert inside(1.0) == 0.0
    assert (denormal * 1.0).item() != 0.0  # switched back off afterwards
    with pytest.raises(KeyError):
        failing()
    assert (denormal * 1.0).item() != 0.0  # also after an exception
