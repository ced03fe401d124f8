"""Command-line interfaces: ``unnparse`` (the parser) and ``unn`` (umbrella with ``mnist`` and ``seqcomplete``)."""
