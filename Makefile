# Aliases for the two commands in the README (dev.py needs only Python).
.PHONY: run test lint openapi bench
run:
	python3 dev.py run
test:
	python3 dev.py test
lint:
	.venv/bin/ruff check . && .venv/bin/mypy
openapi:
	.venv/bin/python -m service.openapi openapi.json
bench:
	.venv/bin/python -m benchmarks.service
