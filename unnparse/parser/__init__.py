"""Dependency parsing: data, models, training and evaluation."""
