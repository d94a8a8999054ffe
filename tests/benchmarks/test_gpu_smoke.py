"""The GPU benchmark's every code path runs on the CPU (``--smoke``), with only what the device image has.

The device image has torch, transformers, accelerate, numpy and scikit-learn, and none of the
service's packages: the smoke run blocks those, so an import that would fail there fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ABSENT_ON_THE_DEVICE = ["pydantic", "pydantic_settings", "fastapi", "starlette", "redis", "rq", "shap",
                        "concept_erasure", "gguf", "fakeredis"]
SCRIPT = f"""
import sys
for name in {ABSENT_ON_THE_DEVICE!r}:
    sys.modules[name] = None  # importing it raises ImportError, as on the device
from benchmarks.gpu.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_the_smoke_run_covers_every_section_and_its_checks_pass(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, "--smoke", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["rows"]
    assert {row["section"] for row in rows} == {"checks", "generation", "attribution", "tracing", "memory"}
    assert not [row for row in rows if row["result"].startswith(("error", "skipped: the"))]
    checks = [row for row in rows if row["section"] == "checks" and row["target"] != "-"]
    assert len(checks) == 4 and all(row["result"] == "pass" for row in checks), checks
    targets = [row for row in rows if row["section"] != "checks" and row["target"] != "-"]
    assert len(targets) == 5 and all(row["result"].startswith(("n/a (smoke", "skipped: Captum")) for row in targets)
    assert (tmp_path / "table.md").read_text().startswith("| section |")
    assert "| section | measure |" in done.stdout
