"""Every score: attachment and tag scores of parses with the gold words (:mod:`unnparse.evaluation.attachment`),
the CoNLL 2018 shared task's scores of parses of raw text, words aligned through the text
(:mod:`unnparse.evaluation.text_alignment`), and the shared task's full set of scores, computed as its script does,
for either (:mod:`unnparse.evaluation.conll18`: tokens ... UAS, LAS, CLAS, MLAS, BLEX)."""
