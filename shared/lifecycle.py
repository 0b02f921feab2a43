"""How a service process shares its address with its siblings, and how it stops.

Every process of a service listens on the service's one address: its socket is bound
with `SO_REUSEPORT`, and the kernel spreads new connections over the processes that
listen there. A process listens only once its start-up is complete (uvicorn calls
`listen()` after the application's lifespan has started), so no connection waits in
the queue of a process that is still connecting to PostgreSQL and Kafka.

Asked to stop (SIGTERM, or Ctrl-C), a process at once says so on `/readyz` (503,
`process stopping`) and takes no new connection: it closes its listening socket, and
the kernel gives the next connections to the processes still listening. It still
answers on the connections it holds for `ATRIUM_STOP_DRAIN_SECONDS` (for a load
balancer that polls readiness over kept-alive connections), then closes the idle ones,
lets the requests in flight finish (`IN_FLIGHT_GRACE_SECONDS`), and stops its runtime
(`ServiceRuntime.stop`: the consumers' batch in hand, the relay's, the jobs running);
then it exits 0. A second signal skips what is left of the drain.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import time
from types import FrameType

import uvicorn

from shared.http import NotReadyError

logger = logging.getLogger(__name__)

IN_FLIGHT_GRACE_SECONDS = 10
"""How long a stopping process waits for the requests in flight; past it they are
cancelled."""
WORK_IN_HAND_GRACE_SECONDS = 5.0
"""How long a stopping process waits for a consumer batch, a relay batch or a periodic
job that is running; past it the work is cancelled (its transaction rolls back, and
another process, or this one after a restart, does it again)."""
LONGEST_STOP_SECONDS = IN_FLIGHT_GRACE_SECONDS + WORK_IN_HAND_GRACE_SECONDS + 5.0
"""What a launcher should give a process to stop, besides its drain, before it kills it."""
STARTUP_FAILURE = 3
"""uvicorn's exit status for a process that could not start."""


class _ThisProcess:
    stopping = False


_this_process = _ThisProcess()


async def check_not_stopping() -> None:
    """A readiness check: a process that was asked to stop is not ready."""
    if _this_process.stopping:
        raise NotReadyError("stopping")


def shared_socket(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port` beside the other processes of the service
    (`SO_REUSEPORT`), not yet listening: uvicorn listens once the application started."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        logger.error("cannot bind %s:%d: %s", host, port, error)
        sys.exit(STARTUP_FAILURE)
    sock.set_inheritable(False)
    return sock


class GracefulServer(uvicorn.Server):
    """uvicorn's server, stopping as the module's documentation says. uvicorn alone
    closes every idle connection at once, and re-raises the signal once it has stopped,
    so that the process ends killed by SIGTERM rather than with status 0."""

    def __init__(self, config: uvicorn.Config, *, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self._asked_to_stop_at: float | None = None
        self._listening = True

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:  # noqa: ARG002
        # A signal handler: it only records, and `on_tick` acts on the event loop.
        if self._asked_to_stop_at is None:
            _this_process.stopping = True
            self._asked_to_stop_at = time.monotonic()
        elif sig == signal.SIGINT and self.should_exit:
            self.force_exit = True
        else:
            self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self._asked_to_stop_at is not None and self._listening:
            self._listening = False
            for server in self.servers:
                server.close()
            logger.info(
                "asked to stop: no new connections; answering those held for %gs",
                self.drain_seconds,
            )
        if (
            self._asked_to_stop_at is not None
            and time.monotonic() - self._asked_to_stop_at >= self.drain_seconds
        ):
            self.should_exit = True
        return await super().on_tick(counter)
