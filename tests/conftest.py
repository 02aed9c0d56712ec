from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# golden/ is one importable package (`golden.helloworld.v1...`), as a user's gen/ would be.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.cluster import cluster  # noqa: E402,F401  (the fixture, for e2e and interop tests)
