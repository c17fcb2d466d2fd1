"""``python -m novaflow.cli`` runs the CLI (used by tests and by workers without the console script)."""

from novaflow.cli import main

main()
