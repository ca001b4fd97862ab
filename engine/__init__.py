"""The engine: metrics, attacks, defences, evaluation, store and runner. No Qt here."""

__version__ = "0.1.0"
