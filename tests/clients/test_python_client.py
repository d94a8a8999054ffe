"""The generated Python client: what the pinned generator makes of the committed spec, installed.

`tests/service/test_openapi.py` keeps `openapi.json` equal to the app's spec; this keeps
`clients/python/` equal to what `clients/generate.py` makes of that file, so the client can never
drift from the API. The README's client example is the file a test runs against the real stack
(`tests/integration/test_stack.py`).
"""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "clients" / "examples" / "attribute_job.py"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("clients_generate", ROOT / "clients" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_client_is_exactly_what_the_generator_makes_of_openapi_json(tmp_path: Path) -> None:
    generate = generator()
    fresh = tmp_path / "python"
    generate.generate_client(generate.SPEC, fresh)
    assert (fresh / "interp_client" / "api" / "attribution" / "attribute.py").is_file()
    changed = generate.differences(fresh, generate.CLIENT_DIR)
    assert not changed, f"clients/python is stale ({', '.join(changed[:10])}): run `python3 dev.py client`"


def test_a_changed_file_is_reported_as_a_difference(tmp_path: Path) -> None:
    generate = generator()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for side in ("a", "b"):
        (tmp_path / side / "same.py").write_text("x = 1\n")
        (tmp_path / side / "__pycache__").mkdir()
        (tmp_path / side / "__pycache__" / "same.cpython-311.pyc").write_bytes(side.encode())  # ignored
    (tmp_path / "a" / "changed.py").write_text("x = 1\n")
    (tmp_path / "b" / "changed.py").write_text("x = 2\n")
    (tmp_path / "a" / "removed.py").write_text("")
    assert generate.differences(tmp_path / "a", tmp_path / "b") == ["changed.py", "removed.py"]


def test_the_generator_and_its_formatter_are_pinned_exactly() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    assert f"openapi-python-client=={generator().GENERATOR_VERSION}" in extras
    assert any(re.fullmatch(r"ruff==[0-9.]+", requirement) for requirement in extras), extras


def test_the_client_is_installed_from_this_checkout_as_its_own_package() -> None:
    import interp_client

    assert Path(interp_client.__file__).resolve().is_relative_to(ROOT / "clients" / "python")
    project = tomllib.loads((ROOT / "clients" / "python" / "pyproject.toml").read_text())["project"]
    assert project["name"] == "interp-service-client"


def test_the_readme_shows_the_example_file_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- example: clients/examples/attribute_job.py -->\n```python\n(.*?)```", readme, re.S)
    assert found, "README.md lacks the client example block"
    assert found.group(1) == EXAMPLE.read_text()
