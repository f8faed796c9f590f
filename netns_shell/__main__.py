"""`python -m netns_shell` runs the command line.

`python -m` puts the current directory first on sys.path: as root in a
directory someone else can write to, a planted `tabulate.py` or
`prompt_toolkit/` would run with our privileges.  Drop it before anything
else is imported (the console script never had it).
"""

import os
import sys

_here = os.getcwd()
sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.abspath(p) != _here]

from .cli import main  # noqa: E402

raise SystemExit(main())
