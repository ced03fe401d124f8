"""Every score: attachment and tag scores of parses with the gold words (:mod:`unnparse.evaluation.attachment`),
and the CoNLL 2018 shared task's scores of parses of raw text, words aligned through the text
(:mod:`unnparse.evaluation.text_alignment`)."""
