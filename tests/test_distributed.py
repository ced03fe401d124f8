"""Distributed data-parallel training: 2 CPU processes with gloo on a tiny treebank."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from tests.parser_fixtures import conllu_text
from unnparse.conllu import read_conllu
from unnparse.parser.parser import Parser, default_config
from unnparse.parser.training import TrainOptions, train_parser
from unnparse.structures import arc_marginals, max_spanning_tree
from unnparse.training import schedules
from unnparse.training.distributed import DistContext, exit_process


def _worker(rank: int, world: int, tmp: str, phase: str = "train") -> None:
    """One rank: ``train`` runs one epoch from scratch; ``resume`` continues that run under a time budget for which
    the ranks' own estimates of the epochs that fit disagree (rank 0: 5 more, rank 1: 1 more)."""
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp}/store-{phase}", rank=rank, world_size=world)
    try:
        train = read_conllu(io.StringIO(conllu_text(40, 1)), name="toy")
        dev = read_conllu(io.StringIO(conllu_text(8, 2)), name="toy-dev")
        torch.manual_seed(0)
        parser = Parser.build(default_config(unn_iter=2, hidden=16, rel_hidden=8, lstm_hidden=16, lstm_layers=1), train)
        seen: list[int] = []
        resume = phase == "resume"
        if resume:
            schedules.epochs_that_fit = lambda *args, **kwargs: 5 if rank == 0 else 1
        opts = TrainOptions(
            epochs=3 if resume else 1,
            lr=5e-3,
            batch_tokens=120,
            seed=3,
            patience=100,
            max_minutes=60 if resume else None,
        )
        train_parser(
            parser,
            train,
            dev,
            opts,
            Path(tmp) / "model",
            progress=False,
            resume=resume,
            dist=DistContext(rank=rank, world_size=world),
            on_batch=seen.extend,
        )
        digest = hashlib.sha256()
        for name, tensor in sorted(parser.model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        (Path(tmp) / f"{phase}-rank{rank}.json").write_text(json.dumps({"seen": seen, "digest": digest.hexdigest()}))
    finally:
        torch.distributed.destroy_process_group()
    exit_process(0)


def _compile_kernels() -> None:
    """Compile the numba kernels (decoding, exact fallback and its complex-step backward) here, once, so that the two
    workers load them from the on-disk cache instead of compiling into it at the same time."""
    scores = (torch.randn(2, 6, 6, dtype=torch.float64) * 100).requires_grad_(True)
    lengths = torch.tensor([5, 3])
    (arc_marginals(scores, lengths)[1] * torch.randn(2, 6, 6, dtype=torch.float64)).sum().backward()
    max_spanning_tree(scores.detach(), lengths)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not available")
def test_two_process_gloo_training(tmp_path):
    _compile_kernels()
    mp.spawn(_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"train-rank{r}.json").read_text()) for r in (0, 1))
    # in the epoch, the ranks saw disjoint shards that together cover every sentence exactly once
    assert r0["seen"] and r1["seen"]
    assert not set(r0["seen"]) & set(r1["seen"])
    assert sorted(r0["seen"] + r1["seen"]) == list(range(40))
    # weights are identical on both ranks after training
    assert r0["digest"] == r1["digest"]
    # rank 0 wrote a normal model that loads and parses
    parser = Parser.load(tmp_path / "model")
    out = parser.parse([["the", "dog", "saw", "a", "cat", "."]])
    assert sum(h == 0 for h in out[0].heads) == 1


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not available")
def test_two_process_resume_under_a_time_budget_follows_rank_0s_plan(tmp_path):
    _compile_kernels()
    mp.spawn(_worker, args=(2, str(tmp_path), "train"), nprocs=2, join=True)
    first = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert [r["epoch"] for r in first] == [1]
    # resumed with 3 epochs and a time budget; rank 1 alone would end the decay after epoch 2, rank 0 plans all 3:
    # every rank follows rank 0, so the weights stay identical and the run trains epochs 2 and 3
    mp.spawn(_worker, args=(2, str(tmp_path), "resume"), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"resume-rank{r}.json").read_text()) for r in (0, 1))
    assert r0["digest"] == r1["digest"]
    assert len(r0["seen"]) + len(r1["seen"]) == 2 * 40
    history = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert history[-1]["lr"] == 0.0  # the decay ended on the last update of epoch 3, as rank 0 planned
    assert history[1]["lr"] > 0.0
    Parser.load(tmp_path / "model").parse([["the", "dog", "saw", "a", "cat", "."]])
