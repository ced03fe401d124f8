"""unnparse: dependency parsing (and more) with undirected neural networks."""

__version__ = "0.1.0"
