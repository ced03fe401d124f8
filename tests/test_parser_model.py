"""The parser network and the Parser API: K=1 is biaffine, save/load round trip, batch == one by one, learning."""

from __future__ import annotations

import io
import json

import pytest
import torch

from tests.parser_fixtures import conllu_text
from unnparse.conllu import read_conllu
from unnparse.model_files import weights_path
from unnparse.parser.factors import ArcPositionFactor
from unnparse.parser.model import N_DISTANCE_BUCKETS, distance_buckets
from unnparse.parser.parser import Parser, default_config
from unnparse.parser.training import TrainOptions, evaluate_parser, train_parser
from unnparse.training.weight_average import WeightAverage


def _sentences(n: int, seed: int):
    return read_conllu(io.StringIO(conllu_text(n, seed)), name="toy")


def _small_config(k: int = 1) -> dict:
    return default_config(unn_iter=k, hidden=32, rel_hidden=16, lstm_hidden=32, lstm_layers=1)


def _trained(tmp_path, k: int = 1, epochs: int = 6):
    torch.manual_seed(0)
    train, dev = _sentences(80, 1), _sentences(10, 2)
    parser = Parser.build(_small_config(k), train)
    opts = TrainOptions(epochs=epochs, lr=1e-2, batch_tokens=300, patience=100, seed=0)
    result = train_parser(parser, train, dev, opts, tmp_path / "model", progress=False)
    return parser, result, train, dev


def test_k1_scores_equal_plain_biaffine_scorer():
    torch.manual_seed(0)
    train = _sentences(8, 5)
    parser = Parser.build(_small_config(1), train)
    model = parser.model.eval()
    with torch.no_grad():  # non-zero biaffine weights so the comparison means something
        for p in model.unn.parameters():
            p.normal_(0, 0.3)
    batch = parser.featurizer.batch(train, list(range(len(train))), gold=True)
    with torch.no_grad():
        out = model(batch)
        x = model.encode(batch)
        xh, xm, arc, head_bias = model.unn.factors
        mask = batch.token_mask.unsqueeze(-1).float()
        h = torch.relu(x @ xh.weight.T + model.unn.biases["H"]) * mask
        m = torch.relu(x @ xm.weight.T + model.unn.biases["M"]) * mask
        scores = h @ arc.weight @ m.transpose(1, 2) + (h @ head_bias.weight).unsqueeze(-1)
    torch.testing.assert_close(out.scores, scores, atol=1e-5, rtol=1e-5)
    # K = 2 feeds Y back into H and M: the scores change
    with torch.no_grad():
        out2 = model(batch, iterations=2)
    assert (out2.scores - out.scores).abs().max() > 1e-3


@pytest.mark.parametrize("k", [1, 2])
def test_scores_only_forward_gives_the_same_scores_and_trees(k):
    torch.manual_seed(0)
    train = _sentences(12, 6)
    parser = Parser.build(_small_config(k), train)
    model = parser.model.eval()
    batch = parser.featurizer.batch(train, list(range(len(train))), gold=True)
    with torch.no_grad():
        full, short = model(batch), model(batch, marginals=False)
    assert short.marginals is None and short.log_partition is None
    torch.testing.assert_close(short.scores, full.scores, rtol=0, atol=0)
    assert torch.equal(model.decode(short, batch)[0], model.decode(full, batch)[0])
    assert torch.equal(model.decode(short, batch)[1], model.decode(full, batch)[1])
    with pytest.raises(ValueError, match="log-partition"):
        model.loss(short, batch)


def test_training_learns_the_toy_grammar(tmp_path):
    parser, result, train, dev = _trained(tmp_path, k=2, epochs=20)
    losses = [r["loss"] for r in result.history]
    assert losses[-1] < 0.5 * losses[0]
    scores = evaluate_parser(parser, dev)
    assert scores.uas > 80.0, scores
    assert scores.las > 70.0, scores
    assert (tmp_path / "model" / "config.json").is_file()
    assert (tmp_path / "model" / "metrics.json").is_file()


def test_save_load_same_output_and_batch_equals_one_by_one(tmp_path):
    parser, _, _, dev = _trained(tmp_path, k=2, epochs=2)
    loaded = Parser.load(tmp_path / "model")
    # the saved model is the best epoch: compare the loaded one against a second load (and the live one if best)
    a = [p for p in loaded.predict(dev, marginals=True)]
    b = [p for p in Parser.load(tmp_path / "model").predict(dev, marginals=True)]
    assert [x.sentence.to_conllu() for x in a] == [y.sentence.to_conllu() for y in b]
    one = [next(iter(loaded.predict([s], marginals=True))) for s in dev]
    assert [x.sentence.heads for x in a] == [y.sentence.heads for y in one]
    assert [x.sentence.deprels for x in a] == [y.sentence.deprels for y in one]
    for x, y in zip(a, one, strict=True):
        torch.testing.assert_close(torch.tensor(x.marginals), torch.tensor(y.marginals), atol=1e-4, rtol=0)


def test_live_model_equals_saved_model(tmp_path):
    torch.manual_seed(0)
    train, dev = _sentences(20, 1), _sentences(5, 2)
    parser = Parser.build(_small_config(3), train)
    parser.save(tmp_path / "m")
    loaded = Parser.load(tmp_path / "m")
    live = [p.sentence.to_conllu() for p in parser.predict(dev)]
    again = [p.sentence.to_conllu() for p in loaded.predict(dev)]
    assert live == again


def test_predictions_keep_everything_else():
    text = (
        "# sent_id = x1\n# text = I can't go.\n1-2\tcan't\t_\t_\t_\t_\t_\t_\t_\t_\n"
        "1\tI\tI\tPRON\t_\t_\t_\t_\t_\t_\n2\tca\tcan\tAUX\t_\t_\t_\t_\t_\t_\n3\tn't\tnot\tPART\t_\t_\t_\t_\t_\t_\n"
        "4\tgo\tgo\tVERB\t_\t_\t_\t_\t_\tSpaceAfter=No\n4.1\tgone\tgo\tVERB\t_\t_\t_\t_\t_\t_\n"
        "5\t.\t.\tPUNCT\t_\t_\t_\t_\t_\t_\n\n"
    )
    sents = read_conllu(io.StringIO(text), name="x", require_heads=False)
    parser = Parser.build(_small_config(1), _sentences(5, 1))
    out = next(iter(parser.predict(sents))).sentence.to_conllu()
    lines = out.splitlines()
    assert lines[0] == "# sent_id = x1" and lines[2].startswith("1-2\tcan't")
    assert any(line.startswith("4.1\tgone") for line in lines)
    heads = [int(line.split("\t")[6]) for line in lines if line.split("\t")[0].isdigit()]
    assert sum(h == 0 for h in heads) == 1  # single root
    assert "SpaceAfter=No" in out


@pytest.mark.parametrize("k", [1, 3])
def test_long_sentence_is_parsed_not_dropped(k):
    parser = Parser.build(_small_config(k), _sentences(5, 1))
    words = [f"w{i}" for i in range(300)]
    out = parser.parse([words])
    assert len(out) == 1 and len(out[0].heads) == 300
    assert sum(h == 0 for h in out[0].heads) == 1


class _InterruptError(Exception):
    pass


@pytest.mark.parametrize(("ema", "schedule"), [(0.0, "plateau"), (0.9, "plateau"), (0.0, "decay")])
def test_resume_continues_exactly_where_training_stopped(tmp_path, ema, schedule):
    train, dev = _sentences(30, 1), _sentences(6, 2)
    opts = TrainOptions(epochs=3, lr=5e-3, batch_tokens=200, patience=100, seed=4, ema=ema, schedule=schedule)

    def fresh() -> Parser:
        torch.manual_seed(0)
        return Parser.build(_small_config(2), train)

    straight = fresh()
    full = train_parser(straight, train, dev, opts, tmp_path / "a", progress=False)

    def stop_after_first(record):
        if record["epoch"] == 1:
            raise _InterruptError

    interrupted = fresh()
    with pytest.raises(_InterruptError):
        train_parser(interrupted, train, dev, opts, tmp_path / "b", progress=False, on_epoch=stop_after_first)
    resumed = fresh()
    again = train_parser(resumed, train, dev, opts, tmp_path / "b", progress=False, resume=True)
    assert [r["epoch"] for r in again.history] == [1, 2, 3]
    assert [r["dev"] for r in again.history] == [r["dev"] for r in full.history]
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, msg=name)


def test_weight_average_follows_its_formula_and_swaps_back():
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    average = WeightAverage(layer, 0.5)
    start = layer.weight.detach().clone()
    with torch.no_grad():
        layer.weight.add_(1.0)
    average.update()  # t = 0: decay min(0.5, 1/10) = 0.1
    expected = 0.1 * start + 0.9 * layer.weight.detach()
    torch.testing.assert_close(average.average[0], expected)
    live = layer.weight.detach().clone()
    with average.swapped_in():
        torch.testing.assert_close(layer.weight.detach(), expected)
    torch.testing.assert_close(layer.weight.detach(), live)
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(layer, 1.0)


def test_training_with_weight_averaging_saves_the_averaged_weights(tmp_path):
    torch.manual_seed(0)
    train, dev = _sentences(30, 1), _sentences(6, 2)
    parser = Parser.build(_small_config(1), train)
    opts = TrainOptions(epochs=2, lr=5e-3, batch_tokens=200, patience=100, seed=4, ema=0.9)
    seen = []
    result = train_parser(parser, train, dev, opts, tmp_path / "m", progress=False, on_epoch=seen.append)
    saved = Parser.load(tmp_path / "m")
    live = parser.model.state_dict()
    differs = [k for k, v in saved.model.state_dict().items() if not torch.equal(v, live[k].to(v.dtype))]
    assert differs  # the saved model is not the live one...
    # ...but the average at the best epoch, whose dev scores it reproduces
    assert evaluate_parser(saved, dev).as_dict() == seen[result.best_epoch - 1]["dev"]


def test_python_api_parses_strings_and_token_lists():
    from unnparse.parser import Parser as PublicParser

    parser = PublicParser.build(_small_config(1), _sentences(5, 1))
    out = parser.parse(["The dog saw a cat. A man reads", "the book."])
    assert [s.sent_id for s in out] == ["1", "2", "3"]  # the second string does not continue the first
    assert [len(s) for s in out] == [6, 3, 3]
    assert parser.parse([["a", "dog"]])[0].words == ["a", "dog"]


def test_upos_tagger_learns_and_fills_only_missing_tags(tmp_path):
    parser, _, train, dev = _trained(tmp_path, k=1, epochs=6)
    assert "NOUN" in parser.featurizer.tags["upos"]
    assert set(parser.featurizer.tags) == {"upos", "lemma"}  # the fixtures have no XPOS or FEATS to learn
    # text input has no tags: every word gets a predicted UPOS, and the toy grammar's tags are learnt
    gold = {w: t for s in train for w, t in zip(s.words, s.upos, strict=True)}
    tagged = parser.parse([[w for w in s.words] for s in dev])
    predicted = [(w, t) for s in tagged for w, t in zip(s.words, s.upos, strict=True)]
    assert all(t != "_" for _, t in predicted)
    assert sum(gold.get(w) == t for w, t in predicted) / len(predicted) > 0.9
    # CoNLL-U input keeps its own tags, even wrong ones
    conllu = "1\tdog\tdog\tX\t_\t_\t_\t_\t_\t_\n2\tbarks\tbark\t_\t_\t_\t_\t_\t_\t_\n\n"
    wrong = read_conllu(io.StringIO(conllu), name="w", require_heads=False)
    out = next(iter(parser.predict(wrong))).sentence
    assert out.upos[0] == "X" and out.upos[1] != "_"
    # the tagger is part of the saved model
    loaded = Parser.load(tmp_path / "model")
    assert [s.upos for s in loaded.parse([["the", "dog", "saw", "a", "cat"]])] == [
        s.upos for s in parser.parse([["the", "dog", "saw", "a", "cat"]])
    ]


def test_upos_loss_zero_builds_no_tagger_and_untagged_training_data_is_fine():
    no_tagger = Parser.build(
        default_config(hidden=16, rel_hidden=8, lstm_hidden=16, lstm_layers=1, upos_loss=0.0, lemma_loss=0.0),
        _sentences(5, 1),
    )
    assert not no_tagger.model.taggers and no_tagger.config["vocab"]["upos"] is None
    assert no_tagger.parse([["a", "dog"]])[0].upos == ["_", "_"]
    untagged = read_conllu(io.StringIO("1\tdog\t_\t_\t_\t_\t0\troot\t_\t_\n\n"), name="u")
    parser = Parser.build(_small_config(1), untagged)
    assert not parser.model.taggers  # nothing to learn from
    batch = parser.featurizer.batch(untagged, [0], gold=True)
    loss, _, _ = parser.model.loss(parser.model(batch), batch)
    assert torch.isfinite(loss)


def _with_morphology(sentences):
    """The fixtures with XPOS (UPOS + a suffix) and FEATS (Number=Plur on words ending in s) filled in."""
    out = []
    for s in sentences:
        tags = {
            "xpos": [f"{u}-x" for u in s.upos],
            "feats": ["Number=Plur" if w.endswith("s") else "Number=Sing" for w in s.words],
        }
        copy = s.copy()
        for tok in copy.word_tokens:
            tok["xpos"], tok["feats"] = "_", None
        out.append(copy.with_predictions(s.heads, s.deprels, tags=tags))
    return out


def test_xpos_and_feats_taggers_learn_fill_missing_columns_and_survive_save_load(tmp_path):
    torch.manual_seed(0)
    train, dev = _with_morphology(_sentences(80, 1)), _with_morphology(_sentences(10, 2))
    assert train[0].column("feats")[0].startswith("Number=")
    config = default_config(hidden=32, rel_hidden=16, lstm_hidden=32, lstm_layers=1, xpos_loss=1.0, feats_loss=0.5)
    parser = Parser.build(config, train)
    assert set(parser.featurizer.tags) == {"upos", "xpos", "feats", "lemma"}
    assert set(parser.model.taggers) == {"upos", "xpos", "feats"} and parser.model.lemmatizer is not None
    opts = TrainOptions(epochs=6, lr=1e-2, batch_tokens=300, patience=100, seed=0)
    train_parser(parser, train, dev, opts, tmp_path / "model", progress=False)
    tagged = parser.parse([s.words for s in dev])
    for name in ("xpos", "feats"):
        gold = [t for s in dev for t in s.column(name)]
        predicted = [t for s in tagged for t in s.column(name)]
        assert "_" not in predicted
        assert sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold) > 0.9, name
    # predicted FEATS are real feature structures in the CoNLL-U output
    assert tagged[0].word_tokens[0]["feats"] in ({"Number": "Sing"}, {"Number": "Plur"})
    parser.save(tmp_path / "live")  # the live weights (the training run saved its best epoch's)
    loaded = Parser.load(tmp_path / "live")
    again = loaded.parse([s.words for s in dev])
    assert [s.column("feats") for s in again] == [s.column("feats") for s in tagged]
    assert [s.column("xpos") for s in again] == [s.column("xpos") for s in tagged]


def test_tag_losses_weigh_the_tagging_terms():
    torch.manual_seed(0)
    train = _with_morphology(_sentences(8, 3))
    base = dict(hidden=16, rel_hidden=8, lstm_hidden=16, lstm_layers=1, upos_loss=0.0, lemma_loss=0.0)
    parser = Parser.build(default_config(**base, feats_loss=1.0), train)
    parser.model.eval()
    batch = parser.featurizer.batch(train, list(range(len(train))), gold=True)
    out = parser.model(batch)
    with_feats, arc, rel = parser.model.loss(out, batch)
    parser.model.tag_weights["feats"] = 0.0
    without, _, _ = parser.model.loss(out, batch)
    mask = batch.word_mask
    assert batch.tags is not None
    expected = torch.nn.functional.cross_entropy(out.tag_logits["feats"][mask], batch.tags["feats"][mask])
    torch.testing.assert_close(with_feats - without, expected)
    torch.testing.assert_close(without.double(), (arc + rel).double())


def test_tag_layer_feeds_the_taggers_an_earlier_bilstm_layer():
    torch.manual_seed(0)
    train = _sentences(6, 3)
    base = dict(hidden=16, rel_hidden=8, lstm_hidden=8, lstm_layers=2)
    parser = Parser.build(default_config(**base, tag_layer=1), train)
    model = parser.model.eval()
    batch = parser.featurizer.batch(train, list(range(len(train))), gold=True)
    out = model(batch)
    enc = model.encoder
    first = enc.layer_outputs(batch.words, batch.chars, batch.char_index, batch.lengths)[0]
    torch.testing.assert_close(out.tag_logits["upos"], model.taggers["upos"](first))
    torch.testing.assert_close(out.x, enc(batch.words, batch.chars, batch.char_index, batch.lengths))
    with pytest.raises(ValueError, match="tag_layer 3"):
        Parser.build(default_config(**base, tag_layer=3), train)


@pytest.mark.parametrize("kind", ["soft", "hard"])
def test_tag_features_feed_the_parser_the_predicted_tags(kind, tmp_path):
    torch.manual_seed(0)
    train = _with_morphology(_sentences(30, 3))
    base = dict(hidden=16, rel_hidden=8, lstm_hidden=8, lstm_layers=1, xpos_loss=1.0, lemma_loss=0.0)
    parser = Parser.build(default_config(**base, tag_features=kind, tag_feature_dim=6), train)
    model = parser.model.eval()
    assert set(model.tag_embeddings) == {"upos", "xpos"}
    batch = parser.featurizer.batch(train[:4], list(range(4)), gold=True)
    out = model(batch)
    plain = model.encoder(batch.words, batch.chars, batch.char_index, batch.lengths)
    assert out.x.shape[-1] == plain.shape[-1] + 2 * 6
    torch.testing.assert_close(out.x[..., : plain.shape[-1]], plain)
    upos = out.tag_logits["upos"]
    table = model.tag_embeddings["upos"].weight
    if kind == "soft":
        expected = torch.softmax(upos, -1) @ table
    else:
        expected = table[upos[..., 1:].argmax(-1) + 1]
    torch.testing.assert_close(out.x[..., plain.shape[-1] : plain.shape[-1] + 6], expected)
    # the tree loss alone (no tagging loss) reaches the taggers through soft features only
    with torch.no_grad():
        model.unn.factor("arc").weight.normal_()  # at 0 (its start) the scores would not depend on X yet
    model.zero_grad()
    out = model(batch)
    gold = out.scores.gather(1, batch.heads.unsqueeze(1)).squeeze(1)
    (out.log_partition - (gold * batch.word_mask).sum(-1)).sum().backward()
    grad = model.taggers["upos"].weight.grad
    assert (grad is not None and float(grad.abs().sum()) > 0) == (kind == "soft")
    # saved and loaded, it parses the same (and in int8 too)
    opts = TrainOptions(epochs=1, batch_tokens=300, seed=0)
    train_parser(parser, train, train[:5], opts, tmp_path / "m", progress=False)
    loaded = Parser.load(tmp_path / "m")
    words = [s.words for s in train[:5]]
    parser.save(tmp_path / "live")
    live = Parser.load(tmp_path / "live")
    assert [s.heads for s in live.parse(words)] == [s.heads for s in parser.parse(words)]
    loaded.precision = "int8"
    assert len(loaded.parse(words)) == 5


def test_model_files_with_the_earlier_single_tagger_name_still_load(tmp_path):
    from safetensors.torch import load_file, save_file

    torch.manual_seed(0)
    train = _sentences(6, 3)
    parser = Parser.build(_small_config(1), train)
    parser.save(tmp_path / "m")
    tensors = load_file(weights_path(tmp_path / "m"))
    # a model directory of that time: weights in model.safetensors, no manifest of the files in config.json
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    weights_path(tmp_path / "m").unlink()
    del config["files"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    weights = tmp_path / "m" / "model.safetensors"
    save_file({k.replace("taggers.upos.", "tagger."): v for k, v in tensors.items()}, weights)
    assert "tagger.weight" in load_file(weights)
    loaded = Parser.load(tmp_path / "m")
    torch.testing.assert_close(loaded.model.taggers["upos"].weight, parser.model.taggers["upos"].weight)


def _bucket_by_hand(position: int, head: int) -> int:
    if head == 0 or position == 0 or head == position:
        return 0
    distance = abs(position - head)
    size = 1 + sum(distance >= edge for edge in (2, 3, 4, 5, 8, 16))
    return size if head < position else size + 7


def test_distance_buckets_follow_direction_and_distance():
    gen = torch.Generator().manual_seed(0)
    heads = torch.randint(0, 40, (5, 40), generator=gen)
    buckets = distance_buckets(heads)
    expected = [[_bucket_by_hand(i, int(h)) for i, h in enumerate(row)] for row in heads]
    assert buckets.tolist() == expected
    assert int(buckets.max()) < N_DISTANCE_BUCKETS
    assert distance_buckets(torch.tensor([[0, 2, 0, 2, 8, 25]])).tolist() == [[0, 8, 0, 1, 11, 14]]


def test_relation_classifier_reads_the_arc_direction_when_asked(tmp_path):
    torch.manual_seed(0)
    train = _sentences(6, 3)
    base = dict(hidden=16, rel_hidden=8, lstm_hidden=8, lstm_layers=1)
    parser = Parser.build(default_config(**base, rel_distance=4), train)
    model = parser.model.eval()
    torch.nn.init.normal_(model.rel_weight)
    batch = parser.featurizer.batch(train, list(range(len(train))), gold=True)
    out = model(batch)
    assert batch.heads is not None
    heads = batch.heads
    logits = model.relation_logits(out, heads)
    # by hand: the biaffine form with the dependent's side extended by the embedding of its arc's bucket
    assert out.x is not None
    h = torch.nn.functional.elu(model.rel_head(torch.cat([out.heads_repr, out.x], -1)))
    m = torch.nn.functional.elu(model.rel_dep(torch.cat([out.mods_repr, out.x], -1)))
    h = torch.cat([h, torch.ones_like(h[..., :1])], -1)
    assert model.rel_distance_emb is not None
    m = torch.cat([m, torch.ones_like(m[..., :1]), model.rel_distance_emb(distance_buckets(heads))], -1)
    for b in range(heads.shape[0]):
        for d in range(1, int(batch.lengths[b]) + 1):
            expected = torch.einsum("i,rij,j->r", h[b, heads[b, d]], model.rel_weight, m[b, d])
            torch.testing.assert_close(logits[b, d], expected, atol=1e-4, rtol=1e-4)
    # the same head representations read from the other side give other label scores
    mirrored = heads.clone()
    mirrored[0, 1] = 2 if int(heads[0, 1]) != 2 else 3
    assert not torch.allclose(model.relation_logits(out, mirrored)[0, 1], logits[0, 1])
    parser.save(tmp_path / "m")
    loaded = Parser.load(tmp_path / "m")
    assert loaded.model.rel_distance == 4
    assert [p.sentence.to_conllu() for p in loaded.predict(train)] == [
        p.sentence.to_conllu() for p in parser.predict(train)
    ]


def test_arc_position_factor_is_part_of_the_saved_model(tmp_path):
    torch.manual_seed(0)
    train = _sentences(6, 3)
    base = dict(hidden=16, rel_hidden=8, lstm_hidden=8, lstm_layers=1)
    parser = Parser.build(default_config(**base, arc_position=True), train)
    model = parser.model.eval()
    position = model.unn.factor("arc_position")
    assert isinstance(position, ArcPositionFactor) and position is model.unn.factors[-1]
    batch = parser.featurizer.batch(train, list(range(len(train))), gold=True)
    before = model(batch).scores
    with torch.no_grad():
        position.weight.copy_(torch.arange(position.weight.numel(), dtype=torch.float32))
    after = model(batch).scores
    n = after.shape[-1]
    torch.testing.assert_close(after - before, position.weight[position.buckets(n)].expand_as(after))
    parser.save(tmp_path / "m")
    loaded = Parser.load(tmp_path / "m")
    torch.testing.assert_close(loaded.model.unn.factor("arc_position").weight, position.weight)
    assert [p.sentence.to_conllu() for p in loaded.predict(train)] == [
        p.sentence.to_conllu() for p in parser.predict(train)
    ]


def test_k2_training_records_the_tree_after_sweep_1_and_the_size_of_the_y_messages(tmp_path):
    import json

    from unnparse.parser.training import evaluate_parser, sweep_diagnostics

    parser, _, _, dev = _trained(tmp_path, k=2, epochs=2)
    records = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert all({"uas_sweep1", "las_sweep1", "y_to_h", "y_to_m"} <= set(r["dev"]) for r in records)
    diagnostics = sweep_diagnostics(parser, dev)
    # sweep 1 of K is the same computation as a one-sweep run with the same weights
    one = Parser.build(_small_config(1), _sentences(80, 1))
    one.model.load_state_dict(parser.model.state_dict())
    one.featurizer = parser.featurizer
    assert diagnostics["uas_sweep1"] == evaluate_parser(one, dev).uas
    assert parser.model.iterations == 2  # restored
    # the ratios from the engine's messages, by hand on one batch: Y -> H is the arc and head-bias messages
    batch = parser.featurizer.batch(dev, list(range(len(dev))), gold=False)
    model = parser.model.eval()
    with torch.no_grad():
        out = model(batch)
        states = {"X": out.x, "H": out.heads_repr, "M": out.mods_repr, "Y": out.marginals}
        context = {"lengths": batch.lengths, "token_mask": batch.token_mask.unsqueeze(-1)}
        mask = batch.token_mask.unsqueeze(-1).float()
        arc = model.unn.factor("arc").message("H", states, context)
        bias = model.unn.factor("head_bias").message("H", states, context)
        xh = model.unn.factor("xh").message("H", states, context)
        expected = (((arc + bias) * mask).pow(2).sum() / (xh * mask).pow(2).sum()).sqrt().item()
    assert abs(diagnostics["y_to_h"] - expected) < 1e-4 * max(1.0, expected)
    assert diagnostics["y_to_h"] > 0 and diagnostics["y_to_m"] > 0
    sizes = model.y_message_sizes(out, batch)
    assert set(sizes) == {"x_to_h", "y_to_h", "x_to_m", "y_to_m"}


def test_the_relation_bilinear_in_blocks_equals_the_einsum():
    from unnparse.parser.model import _bilinear_in_blocks

    torch.manual_seed(0)
    h, m, w = torch.randn(3, 50, 7), torch.randn(3, 50, 9), torch.randn(5, 7, 9)
    expected = torch.einsum("bni,rij,bnj->bnr", h, w, m)
    for block in (1, 16, 128, 1000):
        torch.testing.assert_close(_bilinear_in_blocks(h, w, m, block), expected, rtol=1e-5, atol=1e-5)
