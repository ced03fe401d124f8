"""How the commands' ``--help`` reads: a flag shows no value placeholder (typer would print ``<bool>``), an option
that may be repeated shows its element type once and ``...`` (not ``<list[Path]>``), and every other option keeps
its type or choices (``<path>``, ``<dev|test>``, ``<int range> [x>=1]``)."""

from __future__ import annotations

import re
from typing import Any

from typer.core import TyperCommand, TyperGroup

__all__ = ["Command", "Group", "in_panel"]

_LIST = re.compile(r"^<list\[(.+)\]>$")


def _placeholders(params: list[Any], ctx: Any) -> list[Any]:
    for param in params:  # typer's own click classes: recognised by what they are, not by their class
        kind = getattr(param, "param_type_name", None)
        if kind == "argument":  # its name already ends in "..." when it takes several values
            shown = param.display_type(ctx)
            match = _LIST.match(shown or "")
            if match:
                element = f"<{match.group(1).lower()}>"
                param.display_type_rich = lambda ctx=None, element=element: element
            continue
        if kind != "option" or param.metavar is not None:
            continue
        if getattr(param, "is_flag", False):
            param.metavar = ""
            continue
        display = getattr(param, "display_type", None)
        shown = display(ctx) if callable(display) else None
        match = _LIST.match(shown or "")
        if match:
            param.metavar = f"<{match.group(1).lower()}> ..."
    return params


class Command(TyperCommand):
    """A typer command whose help shows the placeholders described in the module docstring."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _placeholders(super().get_params(ctx), ctx)


class Group(TyperGroup):
    """A typer group (an app with subcommands) whose own options' help reads as :class:`Command`'s."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _placeholders(super().get_params(ctx), ctx)


def in_panel(option: Any, panel: str) -> Any:
    """The ``Annotated[type, typer.Option(...)]`` alias ``option`` shown in the help panel ``panel`` (a copy: the
    alias itself is left as it is for the other commands)."""
    import copy
    from typing import Annotated, get_args

    base, *metadata = get_args(option)
    moved = []
    for info in metadata:
        if hasattr(info, "rich_help_panel"):
            info = copy.copy(info)
            info.rich_help_panel = panel
        moved.append(info)
    return Annotated[(base, *moved)]
