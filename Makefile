.PHONY: setup test demo
setup:
	bash scripts/setup.sh

test: setup
	.venv/bin/python -m pytest

demo: setup
	.venv/bin/cnnzoo compare --preset quick --out runs/compare-quick
