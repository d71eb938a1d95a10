"""Carry the trace context across threads, pools and subprocesses.

asyncio tasks inherit the context by themselves; threads and subprocesses need these helpers:

    from agentsignals import propagate

    propagate.Thread(target=work).start()   # or threading.Thread(target=propagate.wrap(work))
    with propagate.ThreadPoolExecutor() as pool: ...
    subprocess.run(cmd, env=propagate.subprocess_env())   # TRACEPARENT/TRACESTATE/BAGGAGE
    propagate.patch_subprocess()                          # opt-in: every subprocess gets them

A child process that uses agentsignals reads TRACEPARENT and BAGGAGE on its first span and joins
the parent's trial, attempt and turn.
"""

from agentsignals._instrument.propagation import (
    Thread,
    ThreadPoolExecutor,
    inject_env,
    patch_subprocess,
    subprocess_env,
    unpatch_subprocess,
    wrap,
)
from agentsignals._instrument.scope import context_from_environ

__all__ = [
    "Thread",
    "ThreadPoolExecutor",
    "context_from_environ",
    "inject_env",
    "patch_subprocess",
    "subprocess_env",
    "unpatch_subprocess",
    "wrap",
]
