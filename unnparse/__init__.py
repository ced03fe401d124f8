"""unnparse: dependency parsing (and more) with undirected neural networks."""

from unnparse.cpu_threads import yield_idle_threads

yield_idle_threads()  # before any unnparse module imports torch: idle OpenMP threads sleep instead of spinning

__version__ = "0.1.0"
