"""Run the API: ``python -m service`` (host and port from INTERP_HOST / INTERP_PORT)."""

from __future__ import annotations

import logging

import uvicorn

from schemas.settings import Settings


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s api %(levelname)s %(name)s: %(message)s")
    uvicorn.run("service.main:create_app", factory=True, host=settings.host, port=settings.port,
                log_level="info", access_log=False)


if __name__ == "__main__":
    main()
