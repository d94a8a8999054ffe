"""GPU benchmark: the engine on an H200 at 135M, 1B and 8B scale, against its peers, in one command.

Models are built from real architectures' configs (``benchmarks/data/configs``: SmolLM2-135M,
Llama-3.2-1B, Llama-3.1-8B) with random weights, straight on the device in bfloat16: throughput
does not depend on the weights' values, and the correctness properties checked (batched rows equal
rows alone, IG completeness, no hook left behind) hold for any weights. No download, no tokenizer:
prompts are token ids.

Run on the device machine, from the repository root (Captum travels as a wheel in the git-ignored
``.whl/``; everything else is in the device image), with ``.whl`` in the run's ``carry``::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \\
        .whl/*.whl && export PYTHONPATH=/tmp/site; set -o pipefail; export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1; \\
        python3 -m benchmarks.gpu --out $OUT 2>&1 | tee $OUT/log.txt

(``timeout_s`` 480, ``carry`` ``[".whl"]``; about 3 to 4 minutes; no section starts after 330 s.)
Without the wheel the run goes on and its Captum rows say ``skipped``.

Fetch the wheel here first (pure Python, so any platform tag)::

    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl captum==0.9.0

It prints timestamped progress lines, then one markdown table (also ``$OUT/table.md``, and every
number in ``$OUT/results.json``, both rewritten after each section, so a run cut short still
leaves what finished). Each section is time-boxed: a fixed small number of timed repeats after a
warm-up, ``torch.cuda.synchronize()`` around each; sections that would start after ``--budget``
seconds are skipped and marked so. Exits 1 if a target fails, unless ``--no-fail``.

``python -m benchmarks.gpu --smoke`` runs every code path on the CPU with tiny versions of the same
configs in seconds (``tests/benchmarks/test_gpu_smoke.py``); without Captum its rows say so.
"""
