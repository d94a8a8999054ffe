# Aliases for the two commands in the README (dev.py needs only Python).
.PHONY: run test lint openapi client bench
run:
	python3 dev.py run
test:
	python3 dev.py test
lint:
	.venv/bin/ruff check . && .venv/bin/mypy
openapi client:  # the spec and the generated client, always together
	python3 dev.py client
bench:
	.venv/bin/python -m benchmarks.service
