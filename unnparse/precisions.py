"""The names of the arithmetic an encoder may run in (``--precision``), without importing torch: ``auto`` (bfloat16
on CUDA, float32 on the CPU), ``float32``, ``bfloat16``. :mod:`unnparse.runtime` turns a name into a dtype."""

__all__ = ["PRECISIONS"]

PRECISIONS: tuple[str, ...] = ("auto", "float32", "bfloat16")
