#!/usr/bin/env python
"""Build the zspace report: ``python pipeline.py [COMMAND] [--config ...] [--set k=v]``.

A thin entry point; the commands live in :mod:`zspace.cli`.
"""

import os
import sys

# Before NumPy loads, here and in every process the build starts: see
# zspace.pipeline.kernels.HUGEPAGE_VARIABLE.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

from zspace.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
