"""``python -m bench.cli``: the same as the ``opsbench`` script."""

from bench.cli import main

main()
