"""`python -m dispatchflow` runs the command-line interface."""

from dispatchflow.cli import main

raise SystemExit(main())
