"""Lets `python -m scanner` run the cmscan command line."""

from scanner.cli import main

main()
