"""`python -m dnac.compiler` runs the CLI."""

from dnac.compiler.cli import main

main()
