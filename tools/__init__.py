"""Developer tooling kept beside the package, not installed with it (e.g. the sample-treebank generator)."""
