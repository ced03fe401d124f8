"""Sequence completion with undirected self-attention (paper §4, App. B, E)."""
