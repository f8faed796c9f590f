"""`python -m netns_shell` runs the command line."""

from .cli import main

raise SystemExit(main())
