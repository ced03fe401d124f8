"""``unn``: the umbrella command — the parser's commands plus the other UNN models (``mnist``, ``seqcomplete``)."""

from __future__ import annotations

import typer

from unnparse.cli.common import VersionOption, user_errors
from unnparse.cli.help_format import Command, Group
from unnparse.cli.mnist_cli import app as mnist_app
from unnparse.cli.parser_app import ensemble, evaluate, merge_shards_command, parse, train, train_tokenizer_command
from unnparse.cli.seqcomplete_cli import app as seqcomplete_app
from unnparse.cli.serve_cli import serve

app = typer.Typer(
    cls=Group,
    name="unn",
    help="Undirected neural networks: the dependency parser ([bold]train[/], [bold]evaluate[/], [bold]parse[/]), "
    "[bold]mnist[/] (classify digits and generate prototypes) and [bold]seqcomplete[/] (undirected attention).",
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(version: VersionOption = False) -> None:
    """Undirected neural networks."""


app.command(cls=Command, name="train", help="Train a dependency parser (same as `unnparse train`).")(train)
app.command(
    cls=Command, name="train-tokenizer", help="Train a parser's tokenizer (same as `unnparse train-tokenizer`)."
)(train_tokenizer_command)
app.command(cls=Command, name="evaluate", help="Score a dependency parser (same as `unnparse evaluate`).")(evaluate)
app.command(cls=Command, name="parse", help="Parse text with a trained parser (same as `unnparse parse`).")(parse)
app.command(cls=Command, name="merge-shards", help="Merge `parse --shard` outputs in input order.")(
    merge_shards_command
)
app.command(cls=Command, name="ensemble", help="Combine parsers into one model (same as `unnparse ensemble`).")(
    ensemble
)
app.command(cls=Command, name="serve", help="Serve parsers over HTTP (same as `unnparse serve`).")(user_errors(serve))
app.add_typer(mnist_app, name="mnist", help="Convolutional UNN on MNIST: train, evaluate, prototypes.")
app.add_typer(seqcomplete_app, name="seqcomplete", help="Undirected self-attention: fill masked sequence items.")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
