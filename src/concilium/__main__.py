"""``python -m concilium`` is the ``concilium`` command."""

from concilium.cli import main

main()
