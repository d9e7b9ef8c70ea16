"""Where a vault call runs: on the event loop, or in the thread pool.

A thread-pool hop costs more than an audited read on an embedded store: handing the call to a
worker thread and the result back costs two thread switches under the interpreter lock, about
as much CPU as the read itself (measured: 1,400 -> 700 us per read, in process). So with SQLite,
whose calls take microseconds and never wait on a network, record reads and single writes run
on the event loop (a record read through ``Vault.get_on_loop``, which shares one commit among
the reads of two loop turns). With PostgreSQL every call waits on round trips, which must not
stall the loop, so calls go to the thread pool. Bulk calls (exports, erasure) always do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from custodes.api._service import Service
from custodes.api.deps import Caller

__all__ = ["vault_call"]

_R = TypeVar("_R")


async def vault_call(service: Service, caller: Caller, call: Callable[[], _R]) -> _R:
    """Run ``call`` (a vault call on behalf of ``caller``) where it costs least.

    On the loop only with an embedded store, and only if the caller has no read running
    elsewhere (an export of theirs in the thread pool would make the loop wait for it).
    """
    if service.inline_calls and not service.vault.is_reading(caller.principal.accessor):
        return call()
    return await run_in_threadpool(call)
