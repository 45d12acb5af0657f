#!/usr/bin/env python
"""Build the zspace report: ``python pipeline.py [COMMAND] [--config ...] [--set k=v]``.

A thin entry point; the commands live in :mod:`zspace.cli`.
"""

import sys

from zspace.cli import main

if __name__ == "__main__":
    sys.exit(main())
