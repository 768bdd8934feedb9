"""Users' files are checked off the event loop, a few at a time, within a time bound.

The YAML reader already bounds size, nesting and alias expansion (`tidegate.schemas.files`); this
keeps even a file at those limits from stalling `/healthz`, the Bridge or the Alertmanager intake:
the check runs in a small pool of its own (so it cannot take every thread of the app's pool) and a
check that takes longer than `CHECK_SECONDS` is answered as a problem of the file. A thread cannot be
stopped, so an overrun check finishes in the background, but at most `CHECK_THREADS` run at once.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from tidegate.schemas.errors import FileProblem, YamlLimitError
from tidegate.schemas.files import FileKind, LoadedFile, load_text

CHECK_SECONDS = 10.0
CHECK_THREADS = 4

_pool = ThreadPoolExecutor(max_workers=CHECK_THREADS, thread_name_prefix="tidegate-file-check")


async def check_file(text: str, path: str, kind: FileKind) -> LoadedFile:
    """`load_text` in the pool; raises its FileError, or a YamlLimitError when it takes too long."""
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.run_in_executor(_pool, load_text, text, path, kind), CHECK_SECONDS)
    except TimeoutError:
        raise YamlLimitError(path, [FileProblem(
            path, None, None, "", f"checking the file took longer than {CHECK_SECONDS:g} s; make it smaller or simpler",
        )]) from None
