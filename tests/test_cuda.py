"""The GPU path: training and parsing on CUDA agree with the CPU, and the UNN iterations never wait for the host.

Skipped without a CUDA device (CI has none); ``bench/gpu_session.sh`` runs them on a GPU machine.
"""

from __future__ import annotations

import io

import pytest
import torch

from tests.parser_fixtures import conllu_text
from unnparse.conllu import read_conllu
from unnparse.devices import host_to_device
from unnparse.mnist.data import MnistData, binarize, to_float
from unnparse.mnist.model import MnistConfig, MnistUNN
from unnparse.mnist.train import TrainOptions as MnistOptions
from unnparse.mnist.train import batch_loss
from unnparse.mnist.train import train as train_mnist
from unnparse.parser.parser import Parser, default_config
from unnparse.parser.training import TrainOptions, train_parser
from unnparse.runtime import adam
from unnparse.seqcomplete.data import DataSpec, generate, make_batch
from unnparse.seqcomplete.model import SeqConfig
from unnparse.seqcomplete.train import TrainOptions as SeqOptions
from unnparse.seqcomplete.train import train as train_seq
from unnparse.structures import arc_marginals

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")


def _sentences(n: int, seed: int):
    return read_conllu(io.StringIO(conllu_text(n, seed)), name="toy")


def _small_config(k: int = 2) -> dict:
    return default_config(unn_iter=k, hidden=32, rel_hidden=16, lstm_hidden=32, lstm_layers=2)


def test_parser_trains_on_cuda_and_parses_like_its_cpu_copy(tmp_path):
    torch.manual_seed(0)
    train, dev = _sentences(60, 1), _sentences(12, 2)
    parser = Parser.build(_small_config(), train)
    parser.model.to(CUDA)
    opts = TrainOptions(epochs=3, lr=1e-2, batch_tokens=300, patience=100, seed=0)
    result = train_parser(parser, train, dev, opts, tmp_path / "model", progress=False)
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in result.history)
    on_gpu = Parser.load(tmp_path / "model", "cuda", precision="float32")
    on_cpu = Parser.load(tmp_path / "model", "cpu", precision="float32")
    heads_gpu = [h for p in on_gpu.predict(dev) for h in p.sentence.heads]
    heads_cpu = [h for p in on_cpu.predict(dev) for h in p.sentence.heads]
    agree = sum(a == b for a, b in zip(heads_gpu, heads_cpu, strict=True)) / len(heads_cpu)
    assert agree >= 0.98
    on_gpu.precision = "bfloat16"
    heads_bf16 = [h for p in on_gpu.predict(dev) for h in p.sentence.heads]
    assert sum(a == b for a, b in zip(heads_bf16, heads_cpu, strict=True)) / len(heads_cpu) >= 0.9


@pytest.mark.parametrize("k", [1, 3])
def test_unn_iterations_and_tree_marginals_never_synchronize_with_the_host(k):
    torch.manual_seed(0)
    train = _sentences(16, 3)
    parser = Parser.build(_small_config(k), train)
    model = parser.model.to(CUDA).train()
    batch = parser.featurizer.batch(train, list(range(len(train))), gold=True).to_device(CUDA)
    x = model.encode(batch).detach().requires_grad_()
    model._encode = lambda _batch: (x, x)  # the encoder's own host work is not under test
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = model(batch)
        log_z, marginals = arc_marginals(out.scores, batch.lengths)
        (out.log_partition.sum() + marginals.sum() + log_z.sum()).backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(x.grad).all()


def test_batches_are_pinned_and_copied_to_the_gpu():
    train = _sentences(8, 4)
    parser = Parser.build(_small_config(), train)
    batch = parser.featurizer.batch(train, list(range(len(train))), gold=True)
    pinned = batch.pin_memory()
    assert pinned.lengths.is_pinned() and pinned.words.is_pinned()
    on_gpu = batch.to_device(CUDA)
    assert on_gpu.lengths.is_cuda and on_gpu.words.is_cuda
    assert torch.equal(on_gpu.lengths.cpu(), batch.lengths)


def test_sequence_batches_are_pinned_copies_and_an_mnist_step_never_waits_for_the_gpu():
    seq = generate(DataSpec(vocab=12, min_length=4, max_length=6, mask_ratio=0.34))
    batch = make_batch(seq, torch.arange(8))
    on_gpu = batch.to(CUDA)
    assert on_gpu.tokens.is_cuda and torch.equal(on_gpu.masked.cpu(), batch.masked)
    assert host_to_device(batch.tokens, CUDA).is_cuda and host_to_device(batch.tokens, "cpu") is batch.tokens
    # a training step of `unn mnist train`: index copy, loss with the prototype term, backward, fused Adam
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 28, 28), generator=g, dtype=torch.uint8).to(CUDA)
    labels = (torch.arange(64) % 10).to(CUDA)
    model = MnistUNN(MnistConfig(unn_iter=3, order="fb")).to(CUDA).train()
    optimizer = adam(model.parameters(), lr=1e-3)
    for step in range(3):  # the first step warms up the allocators and kernels
        if step:
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("error")
        try:
            idx = host_to_device(torch.randperm(64, generator=g)[:32], CUDA)
            loss = batch_loss(model, to_float(images[idx]), binarize(images[idx]), labels[idx], 0.1)[0]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(loss)


def test_mnist_and_sequence_completion_train_on_cuda():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(120) % 10
    images = torch.randint(0, 256, (120, 28, 28), generator=g, dtype=torch.uint8)
    data = MnistData(images[:100], labels[:100], images[100:], labels[100:])
    options = MnistOptions(epochs=1, batch_size=32, dev_size=20, device="cuda", progress=False)
    result = train_mnist(MnistConfig(unn_iter=2), data, options)
    assert next(result.model.parameters()).is_cuda and torch.isfinite(torch.tensor(result.history[0].loss))
    seq = generate(DataSpec(vocab=12, min_length=4, max_length=6, mask_ratio=0.34))
    options = SeqOptions(epochs=1, batch_size=32, device="cuda", progress=False, eval_every=3)
    done = train_seq(SeqConfig(vocab=12, dim=16), seq, options)
    assert done.curve and all(0 <= c.test_accuracy <= 100 for c in done.curve)
