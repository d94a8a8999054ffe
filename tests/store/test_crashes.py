"""A writer killed with SIGKILL at any point of a save never leaves half a variant or vector.

Each case runs a real save in a child process that kills itself (SIGKILL, no cleanup, no
`finally`) at one point: halfway through writing the tensor file, after the manifest is written
but before the rename, and after the rename but before the version counter is updated. The parent
then checks what readers see: only complete versions, each loading with its hash verified, and
the next save getting a fresh number.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from engine.components import AffineEraser
from engine.steering.extraction import SteeringVector
from store.variants import VariantStore
from store.vectors import VectorStore

MODEL, HIDDEN = "tiny", 8
ROOT = Path(__file__).resolve().parents[2]

# Run in the child: one complete version first, then a second save that dies at `point`.
CHILD = """
import os, signal, sys
from pathlib import Path
import torch
import store.variants as vs
import store.versioned as vd
from engine.components import AffineEraser

root, point = Path(sys.argv[1]), sys.argv[2]
store = vs.VariantStore(root)

def eraser(seed):
    g = torch.Generator().manual_seed(seed)
    return AffineEraser(1, torch.randn(8, 1, generator=g), torch.randn(1, 8, generator=g), torch.randn(8, generator=g))

store.save("tiny", "crash", [eraser(0)], method="leace", hidden_size=8)

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if point == "writing-tensors":
    def half_then_die(tensors, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"\\x00" * 1000)
            f.flush()
        die()
    vs.save_file = half_then_die
elif point == "before-rename":
    real_rename = os.rename
    def rename_or_die(src, dst, *args, **kwargs):
        if Path(src).name.startswith(".tmp-"):
            die()
        return real_rename(src, dst, *args, **kwargs)
    os.rename = rename_or_die
elif point == "after-rename":
    vd.record_version = lambda name_dir, version: die()
store.save("tiny", "crash", [eraser(1)], method="leace", hidden_size=8)
print("the save survived", flush=True)
"""


def eraser(seed: int) -> AffineEraser:
    g = torch.Generator().manual_seed(seed)
    return AffineEraser(1, torch.randn(HIDDEN, 1, generator=g), torch.randn(1, HIDDEN, generator=g),
                        torch.randn(HIDDEN, generator=g))


def crash_while_saving(root: Path, point: str) -> None:
    child = subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD), str(root), point], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, (child.returncode, child.stdout, child.stderr[-2000:])


@pytest.mark.parametrize(("point", "survivors"), [("writing-tensors", [1]), ("before-rename", [1]),
                                                  ("after-rename", [1, 2])])
def test_a_variant_save_killed_midway_leaves_only_complete_versions(tmp_path: Path, point: str,
                                                                    survivors: list[int]) -> None:
    crash_while_saving(tmp_path, point)
    store = VariantStore(tmp_path)
    listed = [m["version"] for m in store.list(MODEL)]
    assert listed == survivors
    for version in listed:  # each one whole: its hash checks out and its components load
        assert len(store.load(MODEL, f"crash@{version}").components) == 1
    # The debris of the dead writer is a dot-directory no reader looks at.
    assert {p.name for p in (tmp_path / MODEL / "crash").iterdir() if not p.name.startswith(".")} == {
        str(v) for v in survivors}
    # Writing goes on, with a number never handed out before (the lock died with the writer).
    fresh = store.save(MODEL, "crash", [eraser(2)], method="leace", hidden_size=HIDDEN)
    assert fresh.version == survivors[-1] + 1
    assert store.load(MODEL, "crash").version == fresh.version


VECTOR_CHILD = """
import os, signal, sys
from pathlib import Path
import torch
import store.vectors as vs
from tests.store.test_crashes import vector

store = vs.VectorStore(Path(sys.argv[1]))
store.save("honesty", vector(0))
def half_then_die(tensors, path, *args, **kwargs):
    Path(path).write_bytes(b"\\x00" * 100)
    os.kill(os.getpid(), signal.SIGKILL)
vs.save_file = half_then_die
store.save("honesty", vector(1))
"""


def vector(seed: int) -> SteeringVector:
    direction = torch.randn(HIDDEN, generator=torch.Generator().manual_seed(seed))
    return SteeringVector(model=MODEL, directions={1: direction}, method="mean_diff", reading="last", n_pairs=2,
                          normalized=False, norms={1: float(direction.norm())}, accuracy={1: None},
                          layer_scores={})


def test_a_vector_save_killed_while_writing_leaves_only_complete_versions(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", VECTOR_CHILD, str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    store = VectorStore(tmp_path)
    assert [m["version"] for m in store.list(MODEL)] == [1]
    assert torch.equal(store.load(MODEL, "honesty").vector.directions[1], vector(0).directions[1])
    assert any(p.name.startswith(".") for p in (tmp_path / MODEL / "honesty").iterdir())  # debris, ignored
    assert store.save("honesty", vector(2)).version == 2
