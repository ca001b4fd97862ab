"""Leaf modules: errors and exit codes, seeds, labels, bounds, events. Import nothing of the engine."""
