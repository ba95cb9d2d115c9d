"""Starts the local AWS (moto, patched): the entry point kept at this path.

Usage: python infra/local/moto_launcher.py [--port N] [--exit-on-stdin-eof]

Why a script here: tests/src/lib.rs, local-aws.sh and the Python tests run this
path. The code is the local_aws package next to it (see local_aws/__init__.py).
"""

import os
import sys

# Run by path from any working directory: the package sits next to this script.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from local_aws.server import main  # noqa: E402

if __name__ == "__main__":
    main()
