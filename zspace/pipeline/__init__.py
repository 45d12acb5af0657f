"""The build engine: the plan of stages and what runs them.

- ``plan``: every stage (data, each model variant, each notebook, the report), its
  key, its inputs and why it is stale; ``build``, ``status`` and ``train`` read it.
- ``engine``: ``build``, ``status`` and ``train`` themselves.
- ``runner``: executes notebooks, several at once; ``notebooks``: their declared
  figures, models and parameters, and one papermill run; ``kernels``: the kernel
  processes (private sockets, fixed threads, captured output, Ctrl-C).
- ``distributed``: the same stages as tasks of a Dask cluster (``build.executor =
  "dask"``); ``cluster``: reaching it and probing the build folder; ``tasks``: what
  its workers run; ``trainjob``: one training in a process of its own.
- ``state``: stage keys and the record of finished stages; ``session`` (with
  :mod:`zspace.lock`): one process per build folder, its log and scratch folder.

The site the build publishes is rendered by :mod:`zspace.site`.
"""
