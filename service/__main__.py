"""Run the API: ``python -m service`` (host and port from INTERP_HOST / INTERP_PORT)."""

from __future__ import annotations

import uvicorn

from config.logs import configure_logging
from config.settings import Settings


def main() -> None:
    settings = Settings()
    configure_logging("api", fmt=settings.log_format, level=settings.log_level)
    # log_config=None: uvicorn's own lines go through the handler above (JSON, one per line); the
    # access lines come from `RequestTelemetry`, with request ids, tenants and route templates.
    uvicorn.run("service.main:create_app", factory=True, host=settings.host, port=settings.port,
                log_level=settings.log_level.lower(), access_log=False, log_config=None)


if __name__ == "__main__":
    main()
