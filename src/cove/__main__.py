"""`python -m cove` is the `cove` command."""

from cove.cli import main

main()
