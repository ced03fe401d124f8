"""`unn mnist train` and `unn seqcomplete train` in 2 CPU processes with gloo: each rank trains on its own share of
every batch, the ranks end with the same weights, and those are the weights of the one-process run."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from tests.test_mnist import _tiny_mnist
from unnparse.mnist.data import load_mnist
from unnparse.mnist.model import MnistConfig
from unnparse.seqcomplete.data import DataSpec, generate
from unnparse.seqcomplete.model import SeqConfig
from unnparse.training.checkpoints import CHECKPOINT
from unnparse.training.distributed import DistContext, exit_process, init_from_env, rank_share

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not available")

SEQ_SPEC = DataSpec(vocab=12, min_length=4, max_length=6, mask_ratio=0.34)


def _mnist_run(tmp: str) -> tuple:
    """MNIST: 43 training images in batches of 6 (the last batch holds one image: rank 1's share is empty)."""
    from unnparse.mnist import train as mnist_train

    data = load_mnist(Path(tmp) / "mnist", download=False)
    config = MnistConfig(unn_iter=2, order="fb", y_init="zero")
    options = mnist_train.TrainOptions(epochs=1, lr=2e-3, batch_size=6, dev_size=20, device="cpu", progress=False)
    return mnist_train, config, data, options


def _seq_run(tmp: str, budget: bool = False) -> tuple:
    """Sequence completion with random orders and sweep counts (drawn alike on every rank), two epochs."""
    from unnparse.seqcomplete import train as seq_train

    data = generate(SEQ_SPEC)
    config = SeqConfig(vocab=12, dim=8, order="random", random_iter=True)
    n = len(data.split("train"))
    batch = next(b for b in range(7, n) if n % b == 1)  # a last batch of one instance
    options = seq_train.TrainOptions(
        epochs=2, lr=3e-3, batch_size=batch, device="cpu", progress=False, max_minutes=0 if budget else None
    )
    return seq_train, config, data, options


def _digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _worker(rank: int, world: int, tmp: str, job: str) -> None:
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp}/store-{job}", rank=rank, world_size=world)
    try:
        module, config, data, options = (
            _mnist_run(tmp) if job.startswith("mnist") else _seq_run(tmp, budget=job == "budget")
        )
        dist = DistContext(rank=rank, world_size=world)
        if job == "mnist-resume":
            _mnist_resume(module, data, dist, Path(tmp))
        else:
            _train_and_record(job, module, config, data, options, dist, Path(tmp))
    finally:
        torch.distributed.destroy_process_group()
    exit_process(0)


def _train_and_record(job: str, module, config, data, options, dist: DistContext, tmp: Path) -> None:
    """Train (for "resume": interrupted after 3 updates, then continued from rank 0's checkpoint by both ranks);
    record the indices each rank trained on, the weights' digest and the history's length."""
    seen: list[list[int]] = []
    kwargs = {}
    if job == "resume":
        kwargs = {"checkpoint": tmp / "resume" / CHECKPOINT}
        cut = module.TrainOptions(**{**options.__dict__, "max_updates": 3})
        module.train(config, data, cut, dist=dist, on_batch=lambda idx: seen.append(idx.tolist()), **kwargs)
        torch.distributed.barrier()
        kwargs["resume"] = True
    result = module.train(config, data, options, dist=dist, on_batch=lambda idx: seen.append(idx.tolist()), **kwargs)
    if dist.is_main:
        module.save_trained(tmp / f"model-{job}", result, options)
    record = {"seen": seen, "digest": _digest(result.model), "history": len(result.history)}
    (tmp / f"{job}-rank{dist.rank}.json").write_text(json.dumps(record))


def _mnist_resume(module, data, dist: DistContext, tmp: Path) -> None:
    """Two epochs with dropout and random Y initialisations (random states of each rank's own), uninterrupted and
    interrupted after the first epoch, then resumed from rank 0's checkpoint: the digests of both."""
    config = MnistConfig(unn_iter=2, order="fb", y_init="random", dropout=0.3)
    options = module.TrainOptions(epochs=2, lr=2e-3, batch_size=6, dev_size=20, device="cpu", progress=False)
    whole = _digest(module.train(config, data, options, dist=dist).model)
    ckpt = tmp / "mnist-resume" / CHECKPOINT
    module.train(config, data, module.TrainOptions(**{**options.__dict__, "epochs": 1}), dist=dist, checkpoint=ckpt)
    torch.distributed.barrier()
    resumed = module.train(config, data, options, dist=dist, checkpoint=ckpt, resume=True)
    record = {"whole": whole, "resumed": _digest(resumed.model)}
    (tmp / f"mnist-resume-rank{dist.rank}.json").write_text(json.dumps(record))


def _spawn(tmp_path: Path, job: str) -> tuple[dict, dict]:
    mp.spawn(_worker, args=(2, str(tmp_path), job), nprocs=2, join=True)
    return tuple(json.loads((tmp_path / f"{job}-rank{r}.json").read_text()) for r in (0, 1))  # type: ignore[return-value]


def _assert_same_as_one_process(module, config, data, options, saved: Path) -> None:
    torch.set_num_threads(1)
    alone = module.train(config, data, options).model.state_dict()
    distributed = module.load_model(saved).state_dict()
    assert alone.keys() == distributed.keys()
    for name in alone:
        torch.testing.assert_close(distributed[name], alone[name], rtol=1e-4, atol=1e-6, msg=name)


def test_rank_share_is_disjoint_and_covers_the_batch():
    index = torch.arange(10, 17)
    parts = [rank_share(index, DistContext(rank=r, world_size=3)) for r in range(3)]
    assert sorted(i for part, w in parts for i in part.tolist()) == index.tolist()
    assert all(w == 1.0 for _, w in parts)
    # a batch smaller than the world: the rank left out re-reads the first item at weight 0
    assert [(p.tolist(), w) for p, w in (rank_share(index[:1], DistContext(rank=r, world_size=2)) for r in (0, 1))] == [
        ([10], 1.0),
        ([10], 0.0),
    ]


def test_two_process_mnist_matches_one_process(tmp_path):
    _tiny_mnist(tmp_path / "mnist", n_train=63, n_test=10)
    r0, r1 = _spawn(tmp_path, "mnist")
    seen0, seen1 = sum(r0["seen"], []), sum(r1["seen"], [])
    assert not set(seen0) & set(seen1)
    module, config, data, options = _mnist_run(str(tmp_path))
    assert len(seen0) + len(seen1) == 63 - options.dev_size
    assert len(r0["seen"]) == 8 and len(r1["seen"]) == 7  # 8 batches; rank 1 has no share of the last one
    assert r0["digest"] == r1["digest"]
    assert r0["history"] == 1 and r1["history"] == 0  # only rank 0 evaluates and keeps the history
    _assert_same_as_one_process(module, config, data, options, tmp_path / "model-mnist")


def test_two_process_mnist_resumes_with_every_ranks_random_state(tmp_path):
    _tiny_mnist(tmp_path / "mnist", n_train=63, n_test=5)
    r0, r1 = _spawn(tmp_path, "mnist-resume")
    assert r0["resumed"] == r0["whole"] and r1["resumed"] == r1["whole"]


def test_two_process_seqcomplete_matches_one_process(tmp_path):
    r0, r1 = _spawn(tmp_path, "seq")
    module, config, data, options = _seq_run(str(tmp_path))
    train_idx = set(data.split("train").tolist())
    for epoch in range(2):  # the shares of each epoch are disjoint and cover the training split
        n0, n1 = (len(r["seen"]) // 2 for r in (r0, r1))
        part0 = sum(r0["seen"][epoch * n0 : (epoch + 1) * n0], [])
        part1 = sum(r1["seen"][epoch * n1 : (epoch + 1) * n1], [])
        assert not set(part0) & set(part1)
        assert set(part0) | set(part1) == train_idx and len(part0) + len(part1) == len(train_idx)
    assert r0["digest"] == r1["digest"]
    _assert_same_as_one_process(module, config, data, options, tmp_path / "model-seq")


def test_two_process_seqcomplete_resumes_from_rank_0s_checkpoint(tmp_path):
    r0, r1 = _spawn(tmp_path, "resume")
    module, config, data, options = _seq_run(str(tmp_path))
    n_batches = -(-len(data.split("train")) // options.batch_size)
    assert len(r0["seen"]) == 2 * n_batches and len(r1["seen"]) == 2 * (n_batches - 1)  # no batch twice, none lost
    assert r0["digest"] == r1["digest"]
    _assert_same_as_one_process(module, config, data, options, tmp_path / "model-resume")


def test_two_process_seqcomplete_time_budget_is_rank_0s(tmp_path):
    # only rank 0 reads the clock: with no time left, both ranks stop after the first update, together
    r0, r1 = _spawn(tmp_path, "budget")
    assert len(r0["seen"]) == len(r1["seen"]) == 1
    assert r0["digest"] == r1["digest"]


def test_cli_nproc_relaunches_under_torchrun_and_rank_0_saves(tmp_path):
    _tiny_mnist(tmp_path / "mnist", n_train=60, n_test=10)
    cmd = [sys.executable, "-m", "unnparse.cli.unn_app", "mnist", "train", "--data-dir", str(tmp_path / "mnist")]
    cmd += ["--output", str(tmp_path / "m"), "--epochs", "1", "--dev-size", "20", "--batch-size", "8"]
    cmd += ["--unn-iter", "1", "--device", "cpu", "--threads", "1", "--no-progress", "--nproc", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("saved to") == 1 and done.stderr.count("epoch 1:") == 1  # rank 0 alone reports
    report = subprocess.run(
        [sys.executable, "-m", "unnparse.cli.unn_app", "mnist", "evaluate", "--model", str(tmp_path / "m")]
        + ["--data-dir", str(tmp_path / "mnist"), "--json", "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["test_images"] == 10


def test_more_processes_than_gpus_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match="needs GPU 1, but it has 1"):
        init_from_env(torch.device("cuda"))
