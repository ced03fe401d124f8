"""Raw text: normalization, sentence splitting and tokenization by rules (:mod:`unnparse.text.raw_text`) or by a
tokenizer learnt from a treebank (:mod:`unnparse.text.trained_tokenizer`), streamed in bounded memory
(:mod:`unnparse.text.lines`). Import the modules themselves (this package imports nothing, so that the CoNLL-U
reader can read its lines without loading the tokenizers)."""
