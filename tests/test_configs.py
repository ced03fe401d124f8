"""The typed parser config: defaults and ranges in one place (the dataclass fields, which the command line and
default_config follow), a dict round trip in the shape config.json has always had, and the migration of a config
written before config_version (version 1) to the same network and the same parses."""

from __future__ import annotations

import io
import json
import re
from dataclasses import fields

import pytest
import torch
import typer
from safetensors.torch import save_file

from tests.parser_fixtures import conllu_text
from unnparse.cli.parser_app import app
from unnparse.conllu import read_conllu
from unnparse.model_files import Limit, ModelFileError
from unnparse.parser.config import (
    CONFIG_VERSION,
    DEFAULT_ENCODER,
    FORMAT_VERSION,
    VERSION_1_ABSENT,
    VERSION_4_ADDED,
    VERSION_5_ADDED,
    ParserConfig,
    ParserModelConfig,
    ScratchEncoderConfig,
    TrainOptions,
    TransformerEncoderConfig,
    migrate,
    recipe_values,
)
from unnparse.parser.data_rules import LARGE_OPTIONS
from unnparse.parser.parser import Parser, default_config

SECTIONS = (ScratchEncoderConfig, TransformerEncoderConfig, ParserModelConfig)


def _sentences(n: int, seed: int):
    return read_conllu(io.StringIO(conllu_text(n, seed)), name="toy")


# ------------------------------------------------------------------------------------------- defaults in one place
def _cli_defaults() -> dict[str, object]:
    command = typer.main.get_command(app).commands["train"]
    return {p.name: getattr(p.default, "value", p.default) for p in command.params}


def test_the_command_line_defaults_are_the_dataclass_defaults():
    cli = _cli_defaults()
    expected = {
        "encoder": DEFAULT_ENCODER,
        "pooling": TransformerEncoderConfig.pooling,
        "freeze_encoder": TransformerEncoderConfig.freeze,
        "lstm_hidden": ScratchEncoderConfig.hidden,
        "char_encoder": ScratchEncoderConfig.char_encoder,
        # every network field is an option of its own name, but single_root (always on)
        **{f.name: f.default for f in fields(ParserModelConfig) if f.name != "single_root"},
    }
    for name, want in expected.items():
        assert name in cli, f"unnparse train has no option for {name}"
        assert cli[name] == want and type(cli[name]) is type(want), (name, cli[name], want)
    # chosen from the training data when not given (unnparse.parser.data_rules), and --epochs from the dev set
    assert cli["lstm_layers"] is None and cli["batch_tokens"] is None and cli["epochs"] is None
    assert LARGE_OPTIONS["lstm_layers"] == ScratchEncoderConfig.layers
    assert LARGE_OPTIONS["batch_tokens"] == TrainOptions.batch_tokens
    for name in ("lr", "patience", "schedule", "max_minutes", "seed", "select_by"):
        assert cli[name] == getattr(TrainOptions, name), name


def test_default_config_follows_the_dataclasses():
    assert default_config() == ParserConfig().to_dict() == ParserConfig.create().to_dict()
    assert ParserConfig.create(encoder="some/bert") == ParserConfig(TransformerEncoderConfig(name="some/bert"))
    made = ParserConfig.create(unn_iter=3, dropout=0.1, lstm_layers=2, char_encoder="lstm", rel_distance=4)
    assert made.model == ParserModelConfig(unn_iter=3, dropout=0.1, rel_distance=4)
    assert made.encoder == ScratchEncoderConfig(layers=2, dropout=0.1, char_encoder="lstm")  # one dropout option
    with pytest.raises(TypeError):
        default_config(unn_iters=2)


# ------------------------------------------------------------------------------------------- ranges
def test_every_field_has_a_range_that_holds_its_default():
    for cls in SECTIONS:
        for f in fields(cls):
            limit = f.metadata.get("limit")
            assert isinstance(limit, Limit), f"{cls.__name__}.{f.name} has no range"
            if f.name != "name":  # a transformer is always named
                assert limit.accepts(f.default), (cls.__name__, f.name)
    assert set(ParserModelConfig.limits()) == {f"model.{f.name}" for f in fields(ParserModelConfig)}


@pytest.mark.parametrize(
    ("cls", "key", "value", "needle"),
    [
        (ParserModelConfig, "unn_iter", 0, "model.unn_iter must be an integer in [1, 100], not 0"),
        (ParserModelConfig, "unn_iter", True, "model.unn_iter must be an integer in [1, 100], not true"),
        (ParserModelConfig, "hidden", 70_000, "model.hidden must be an integer in [1, 65536], not 70000"),
        (ParserModelConfig, "dropout", 1.0, "model.dropout must be a number in [0, 1), not 1.0"),
        (ParserModelConfig, "upos_loss", -1.0, "model.upos_loss must be a number in [0, 1000000]"),
        (ParserModelConfig, "rel_from_x", 1, "model.rel_from_x must be true or false, not 1"),
        (ParserModelConfig, "tag_layer", 65, "model.tag_layer must be an integer in [0, 64]"),
        (ScratchEncoderConfig, "layers", 65, "encoder.layers must be an integer in [1, 64]"),
        (ScratchEncoderConfig, "char_encoder", "gru", "encoder.char_encoder must be one of cnn, lstm"),
        (TransformerEncoderConfig, "pooling", "max", "encoder.pooling must be one of first, mean"),
    ],
)
def test_values_out_of_range_are_refused_by_the_dataclass_and_on_load(cls, key, value, needle):
    extra = {"name": "some/bert"} if cls is TransformerEncoderConfig else {}
    with pytest.raises(ValueError) as err:
        cls(**extra, **{key: value})
    assert needle in str(err.value) and "\n" not in str(err.value)
    encoder = TransformerEncoderConfig(name="some/bert") if cls is TransformerEncoderConfig else ScratchEncoderConfig()
    config = ParserConfig(encoder).to_dict()
    config[cls.SECTION][key] = value
    with pytest.raises(ModelFileError) as err:
        ParserConfig.from_dict(config, source="m/config.json")
    assert str(err.value).startswith(f"m/config.json: {needle}") and "\n" not in str(err.value)
    with pytest.raises(ValueError, match=re.escape(f"parser config: {needle}")):
        Parser.build(config, _sentences(3, 1))


def test_a_current_config_needs_every_key():
    config = ParserConfig().to_dict()
    del config["model"]["rel_from_x"]
    with pytest.raises(
        ModelFileError, match=r"^config.json: model.rel_from_x is missing \(it must be true or false\)$"
    ):
        ParserConfig.from_dict(config)
    config = ParserConfig().to_dict()
    config["encoder"]["type"] = "python"
    with pytest.raises(ModelFileError, match="encoder.type must be one of scratch, transformer"):
        ParserConfig.from_dict(config)


# ------------------------------------------------------------------------------------------- round trip
@pytest.mark.parametrize(
    "config",
    [
        ParserConfig(),
        ParserConfig.create(encoder="some/bert", pooling="mean", freeze_encoder=True, unn_iter=3),
        ParserConfig.create(
            lstm_hidden=32, char_encoder="lstm", xpos_loss=1.0, feats_loss=0.5, rel_from_x=False, tag_layer=2
        ),
        ParserConfig(model=ParserModelConfig(single_root=False, arc_position=True, rel_distance=8)),
    ],
)
def test_to_dict_and_from_dict_round_trip_in_the_old_shape(config):
    data = config.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert ParserConfig.from_dict(data) == config
    assert list(data) == ["kind", "format_version", "config_version", "encoder", "model"]
    assert (data["kind"], data["format_version"], data["config_version"]) == ("parser", FORMAT_VERSION, CONFIG_VERSION)
    # the keys config.json has had, in their order (lemma_loss since config_version 3, five since 4, three since 5)
    assert list(data["model"]) == [
        "unn_iter",
        "hidden",
        "rel_hidden",
        "dropout",
        "single_root",
        "upos_loss",
        "xpos_loss",
        "feats_loss",
        "lemma_loss",
        "rel_from_x",
        "rel_distance",
        "arc_position",
        "tag_layer",
        "update_order",
        "head_bias",
        "x_dropout",
        "arc_init",
        "rel_detach",
        "damping",
        "tag_features",
        "tag_feature_dim",
    ]
    if isinstance(config.encoder, ScratchEncoderConfig):
        assert list(data["encoder"]) == [
            "type",
            "word_dim",
            "char_dim",
            "char_filters",
            "hidden",
            "layers",
            "dropout",
            "word_dropout",
            "min_word_freq",
            "char_encoder",
        ]
    else:
        assert list(data["encoder"]) == ["type", "name", "pooling", "freeze"]


def test_weights_given_as_integers_are_numbers():
    model = ParserModelConfig(upos_loss=1, xpos_loss=0)
    assert model == ParserModelConfig(upos_loss=1.0) and isinstance(model.upos_loss, float)
    assert ParserConfig.from_dict({**default_config(), "model": {**default_config()["model"], "dropout": 0}})


def test_build_takes_a_typed_config_or_its_dict_and_keeps_other_keys():
    train = _sentences(6, 1)
    typed = ParserConfig.create(hidden=8, rel_hidden=4, lstm_hidden=8, lstm_layers=1)
    torch.manual_seed(0)
    a = Parser.build(typed, train)
    torch.manual_seed(0)
    b = Parser.build({**typed.to_dict(), "treebank": "UD_Toy"}, train)
    assert a.parser_config == b.parser_config == typed
    assert b.config["treebank"] == "UD_Toy" and {k: v for k, v in b.config.items() if k != "treebank"} == a.config
    torch.testing.assert_close(a.model.state_dict(), b.model.state_dict(), rtol=0, atol=0)


# ------------------------------------------------------------------------------------------- migration
SMALL_SCRATCH = dict(word_dim=12, char_dim=6, char_filters=8, hidden=8, layers=1, dropout=0.33, word_dropout=0.2)
#: config.json as unnparse wrote it when format 2 began (UPOS tagger and rel_from_x; no XPOS/FEATS taggers, no
#: character BiLSTM, arc position, relation distance or tag layer), and as hand-written configs may be, still shorter
OLD_CONFIGS = {
    "format-2-release": (
        {"type": "scratch", **SMALL_SCRATCH, "min_word_freq": 2},
        {"unn_iter": 2, "hidden": 16, "rel_hidden": 8, "dropout": 0.33, "single_root": True, "upos_loss": 1.0,
         "rel_from_x": True},
    ),
    "fewest-keys": (
        {"type": "scratch", **SMALL_SCRATCH},
        {"unn_iter": 1, "hidden": 16, "rel_hidden": 8, "dropout": 0.33, "rel_distance": None},
    ),
}  # fmt: skip


def _write_old_model(directory, encoder: dict, model: dict, parser: Parser) -> None:
    """A model directory in the old format: no manifest (weights at model.safetensors), no config_version, the UPOS
    tagger under its first name, and only the keys of ``encoder`` and ``model``."""
    directory.mkdir()
    state = {k.replace("taggers.upos.", "tagger."): v.contiguous() for k, v in parser.model.state_dict().items()}
    save_file(state, str(directory / "model.safetensors"))
    config = {"kind": "parser", "format_version": 2, "encoder": encoder, "model": model}
    config.update(vocab=parser.config["vocab"], treebank=None, unnparse_version="0.1.0")
    (directory / "config.json").write_text(json.dumps(config), encoding="utf-8")


def _outputs(parser: Parser, sentences) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    batch = parser.featurizer.batch(sentences, list(range(len(sentences))), gold=True)
    with torch.no_grad():
        out = parser.model(batch)
        labels = parser.model.relation_logits(out, batch.heads)
    parsed = [s.to_conllu() for s in parser.parse([s.words for s in sentences])]
    return out.scores, labels, parsed


@pytest.mark.parametrize("name", sorted(OLD_CONFIGS))
def test_an_old_model_directory_loads_and_parses_as_the_migrated_config(tmp_path, name):
    old_encoder, old_model = OLD_CONFIGS[name]
    migrated = migrate({"encoder": old_encoder, "model": old_model})
    # the values that reproduce the old behaviour: those the code read when a key was absent
    for key, value in VERSION_1_ABSENT["model"].items():
        assert migrated["model"][key] == (old_model[key] if old_model.get(key) is not None else value)
    assert migrated["encoder"]["char_encoder"] == "cnn" and migrated["config_version"] == CONFIG_VERSION
    expected = ParserConfig(ScratchEncoderConfig(**SMALL_SCRATCH), ParserModelConfig(**{
        **{k: v for k, v in old_model.items() if v is not None}, **{
            k: v for k, v in VERSION_1_ABSENT["model"].items() if old_model.get(k) is None}}))  # fmt: skip
    assert ParserConfig.from_dict({"encoder": old_encoder, "model": old_model}) == expected
    assert expected.model.rel_from_x is (name == "format-2-release")  # before rel_from_x, labels read H and M only

    train = _sentences(20, 1)
    torch.manual_seed(0)
    fresh = Parser.build(expected, train)
    with torch.no_grad():  # weights away from their initial symmetries, so that every score counts
        for p in fresh.model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    assert bool(fresh.model.taggers) is (expected.model.upos_loss > 0)
    fresh.save(tmp_path / "new")
    _write_old_model(tmp_path / "old", old_encoder, old_model, fresh)
    on_disk = (tmp_path / "old" / "config.json").read_bytes()

    old, new = Parser.load(tmp_path / "old"), Parser.load(tmp_path / "new")
    assert old.parser_config == new.parser_config == expected
    assert old.config["config_version"] == CONFIG_VERSION and old.config["model"] == expected.model.to_dict()
    assert (tmp_path / "old" / "config.json").read_bytes() == on_disk  # loading writes nothing
    torch.testing.assert_close(old.model.state_dict(), new.model.state_dict(), rtol=0, atol=0)
    sentences = _sentences(6, 7)
    for a, b in zip(_outputs(old, sentences), _outputs(new, sentences), strict=True):
        if isinstance(a, torch.Tensor):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        else:
            assert a == b
    # saved again, the old model is a current one
    old.save(tmp_path / "resaved")
    resaved = json.loads((tmp_path / "resaved" / "config.json").read_text(encoding="utf-8"))
    assert resaved["config_version"] == CONFIG_VERSION and resaved["model"] == expected.model.to_dict()
    assert _outputs(Parser.load(tmp_path / "resaved"), sentences)[2] == _outputs(new, sentences)[2]


def test_a_config_from_the_future_or_with_a_bad_version_is_one_line(tmp_path):
    torch.manual_seed(0)
    Parser.build(ParserConfig.create(hidden=8, rel_hidden=4, lstm_hidden=8, lstm_layers=1), _sentences(4, 1)).save(
        tmp_path / "m"
    )
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    for version, needle in [
        (CONFIG_VERSION + 1, f"config_version {CONFIG_VERSION + 1} is newer than unnparse "),
        ("2", 'config_version must be an integer in [1, 2147483648], not "2"'),
        (0, "config_version must be an integer in [1, 2147483648], not 0"),
    ]:
        path.write_text(json.dumps({**config, "config_version": version}), encoding="utf-8")
        with pytest.raises(ModelFileError) as err:
            Parser.load(tmp_path / "m")
        message = str(err.value)
        assert message.startswith(f"{path}: {needle}") and "\n" not in message
    assert f"(at most {CONFIG_VERSION})" in str(
        pytest.raises(ModelFileError, ParserConfig.from_dict, {**config, "config_version": 99}).value
    )


def test_the_other_tasks_declare_their_ranges_beside_their_fields():
    from unnparse.mnist.model import MnistConfig
    from unnparse.mnist.train import CONFIG_LIMITS as MNIST_LIMITS
    from unnparse.seqcomplete.model import SeqConfig
    from unnparse.seqcomplete.train import CONFIG_LIMITS as SEQ_LIMITS

    for cls, limits in ((MnistConfig, MNIST_LIMITS), (SeqConfig, SEQ_LIMITS)):
        assert list(limits) == [f.name for f in fields(cls)]
        for f in fields(cls):
            assert limits[f.name] is f.metadata["limit"] and limits[f.name].accepts(f.default), (cls, f.name)
    assert MNIST_LIMITS["unn_iter"].describe() == SEQ_LIMITS["unn_iter"].describe() == "an integer in [1, 100]"


def test_a_version_4_config_is_read_with_the_settings_its_models_had():
    current = ParserConfig().to_dict()
    old = {
        **current,
        "config_version": 4,
        "model": {k: v for k, v in current["model"].items() if k not in VERSION_5_ADDED},
    }
    migrated = ParserConfig.from_dict(old).model
    assert (migrated.damping, migrated.tag_features, migrated.tag_feature_dim) == (0.0, "none", 32)
    assert {k: getattr(ParserModelConfig(), k) for k in VERSION_5_ADDED} == VERSION_5_ADDED


def test_a_version_3_config_is_read_with_the_settings_its_models_had():
    current = ParserConfig().to_dict()
    old = {
        **current,
        "config_version": 3,
        "model": {k: v for k, v in current["model"].items() if k not in VERSION_4_ADDED | VERSION_5_ADDED},
    }
    migrated = ParserConfig.from_dict(old).model
    assert (migrated.update_order, migrated.head_bias, migrated.x_dropout) == ("sequential", True, True)
    assert (migrated.arc_init, migrated.rel_detach) == ("zero", False)
    assert {k: getattr(ParserModelConfig(), k) for k in VERSION_4_ADDED} == VERSION_4_ADDED  # the defaults today


def test_recipe_values():
    assert recipe_values("default", "scratch") == {}
    paper = recipe_values("paper", "scratch")
    assert paper["update_order"] == "jacobi" and paper["hidden"] == 400 and paper["select_by"] == "uas"
    assert "lr" not in paper  # the paper has no learning rate for the scratch encoder
    assert recipe_values("paper", "bert-base-multilingual-cased")["encoder_lr"] == 5e-5
    model_keys = {f.name for f in fields(ParserModelConfig)}
    train_keys = {f.name for f in fields(TrainOptions)}
    assert set(paper) <= model_keys | train_keys  # every value names a setting, and is in its range:
    ParserModelConfig(**{k: v for k, v in paper.items() if k in model_keys})
    TrainOptions(**{k: v for k, v in paper.items() if k in train_keys})
    with pytest.raises(ValueError, match="unknown recipe 'fast'"):
        recipe_values("fast", "scratch")
