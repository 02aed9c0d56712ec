"""`python -m micro.cli`: the `micro` command."""

from micro.cli import main

main()
