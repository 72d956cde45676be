"""``python -m algajobs`` runs the CLI."""

from .cli import entry

entry()
