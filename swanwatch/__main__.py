"""``python -m swanwatch``: the same as the ``swanwatch`` command."""

from swanwatch.cli import main

main()
