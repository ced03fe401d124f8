"""The errors and warnings of CoNLL-U input: each names the file and the 1-based line."""

from __future__ import annotations

import os

__all__ = ["CoNLLUError", "MultipleRootsWarning", "NoSentencesError"]


class CoNLLUError(ValueError):
    """Malformed CoNLL-U input; ``str()`` is ``"{path}:{line}: {message}"``.

    ``line`` is 1-based; it is ``None`` for errors about a whole input (then ``str()`` is
    ``"{path}: {message}"``).
    """

    def __init__(self, path: str | os.PathLike[str], line: int | None, message: str) -> None:
        super().__init__(str(path), line, message)
        self.path = str(path)
        self.line = line
        self.message = message

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"


class NoSentencesError(CoNLLUError):
    """An input holds no sentence at all (empty file, only blank lines)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        line: int | None = None,
        message: str = "no sentences found (the input is empty)",
    ) -> None:
        super().__init__(path, line, message)


class MultipleRootsWarning(UserWarning):
    """A sentence has more than one word attached to the root (HEAD 0)."""


# --------------------------------------------------------------------------------------
# Field parsing / serialization
# --------------------------------------------------------------------------------------
