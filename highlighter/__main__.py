"""`python -m highlighter` runs the CLI."""

from highlighter.cli.main import main

main()
