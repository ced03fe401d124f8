"""Exact, stable and fast non-projective dependency-tree structures.

Convention: ``scores`` is a float tensor ``[B, N+1, N+1]`` where ``scores[b, h, d]`` is the
score of the arc head ``h`` -> dependent ``d``; index 0 is the artificial ROOT and the words
of sentence ``b`` are ``1..lengths[b]`` (``lengths``: integer tensor ``[B]``, ROOT excluded).
Column 0, the diagonal and positions past ``lengths[b]`` are ignored.  Trees are given as
``heads [B, N+1]`` with ``heads[b, d]`` the head of word ``d`` (0 elsewhere).  With
``single_root=True`` (the default, as Universal Dependencies require) exactly one word is
attached to ROOT; otherwise at least one.

* :func:`arc_marginals` -- ``(log_partition [B], marginals [B, N+1, N+1])`` by the
  matrix-tree theorem, float64 inside, exact fallback for ill-conditioned sentences,
  differentiable (``d log_partition / d scores = marginals``).
* :func:`max_spanning_tree` -- best tree by Chu-Liu-Edmonds (numba), exact single root.
* :func:`tree_entropy`, :func:`tree_log_likelihood`, :func:`log_partition`.
* :class:`DependencyTreeDistribution` -- the same behind one object.
"""

from .decoding import max_spanning_tree
from .distribution import DependencyTreeDistribution
from .matrix_tree import arc_marginals, log_partition, tree_entropy, tree_log_likelihood

__all__ = [
    "DependencyTreeDistribution",
    "arc_marginals",
    "log_partition",
    "max_spanning_tree",
    "tree_entropy",
    "tree_log_likelihood",
]
