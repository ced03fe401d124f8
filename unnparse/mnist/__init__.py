"""MNIST with a convolutional UNN (paper §3, App. C, D, F): classification and digit prototypes."""
