"""Write the app's OpenAPI spec: ``python -m service.openapi [openapi.json]``.

The committed ``openapi.json`` is the contract clients are generated from; a test fails when
the app's spec and the file differ, so regenerate it with this command after changing the API.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from config.settings import Settings
from service.main import create_app


def build_spec() -> dict[str, Any]:
    # Fixed settings: the spec must not depend on the machine that writes it.
    app = create_app(Settings(redis_url="redis://localhost:6379/0", api_load_models=False))
    return app.openapi()


def render_spec() -> str:
    return json.dumps(build_spec(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "openapi.json")
    target.write_text(render_spec())
    print(f"wrote {target}")
