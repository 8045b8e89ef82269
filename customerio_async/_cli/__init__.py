"""The ``customerio-async`` command line (also ``python -m customerio_async``).

One job per module:

* :mod:`.main` — entry point and dispatch; :mod:`.parser` — the arguments;
  :mod:`.errors` — failures as sentences and exit statuses; :mod:`.credentials`.
* ``import``: :mod:`.job` (the run) with :mod:`.readers` (JSONL/CSV, in a worker thread),
  :mod:`.operations` (line → SDK operation), :mod:`.feed` (admission), :mod:`.settle`
  (outcomes), :mod:`.stopping` (Ctrl-C/SIGTERM), :mod:`.checkpoint`, :mod:`.rejects`,
  :mod:`.progress`, :mod:`.summary` and :mod:`.dryrun`.
* :mod:`.webhook` (``verify-webhook``), :mod:`.region` (``region``), :mod:`.demo` (``demo``).

:mod:`.sdk` is the only module that imports the SDK's private modules.
"""

from __future__ import annotations

from .main import main, run
from .parser import build_parser

__all__ = ["build_parser", "main", "run"]
