"""`python -m services.console`: the web console on ATRIUM_CONSOLE_HOST:PORT."""

from __future__ import annotations

import uvicorn

from services.console.app import create_app
from services.console.settings import get_console_settings


def main() -> None:
    settings = get_console_settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
