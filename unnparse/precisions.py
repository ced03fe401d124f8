"""The names of the arithmetic a parser may run in (``--precision``), without importing torch: ``auto`` (bfloat16
on CUDA, float32 on the CPU), ``float32``, ``bfloat16`` for the encoder, in training and parsing; and for parsing on the
CPU also ``int8`` (the LSTMs and linear layers with int8 weights, quantized once when the model loads).
:mod:`unnparse.runtime` turns a name into what runs."""

__all__ = ["PARSE_PRECISIONS", "PRECISIONS"]

#: Training and parsing.
PRECISIONS: tuple[str, ...] = ("auto", "float32", "bfloat16")
#: Parsing only.
PARSE_PRECISIONS: tuple[str, ...] = (*PRECISIONS, "int8")
