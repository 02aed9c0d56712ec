"""`protoc-gen-micro-messages`: betterproto2-compiler's plugin, run from an empty directory.

betterproto2-compiler leaves out a package's `__init__.py` when one exists relative to its
working directory (and formats with the `ruff` on PATH, configured from that directory).
`micro gen` runs protoc in an empty directory; buf runs plugins where `buf generate` runs,
so in a project with a `hello/` package `gen/hello/__init__.py` would go missing. Use this
plugin in buf.gen.yaml instead of protoc-gen-python_betterproto2 and the output is byte for
byte what `micro gen` writes.
"""

from __future__ import annotations

import os
import sys
import tempfile


def main() -> None:
    from betterproto2_compiler.plugin import main as betterproto2_main

    # betterproto2-compiler runs `ruff` from PATH: this interpreter's scripts first.
    scripts = os.path.dirname(sys.executable)
    os.environ["PATH"] = os.pathsep.join([scripts, os.environ.get("PATH", "")])
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="micro-messages-") as empty:
        os.chdir(empty)
        try:
            betterproto2_main()
        finally:
            os.chdir(here)


if __name__ == "__main__":
    main()
