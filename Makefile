# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
REPORT_DIR ?= demo-report

.PHONY: demo test install bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/imcompress report -o $(REPORT_DIR) --force

test: $(STAMP)
	$(PY) -m pytest -n 2 -q

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	@command -v pngquant >/dev/null || (command -v apt-get >/dev/null && \
		(apt-get install -y -qq pngquant || (apt-get update -qq && apt-get install -y -qq pngquant))) || \
		echo "pngquant not installed: its column is skipped"
	$(PY) benchmarks/quantize.py
	$(PY) benchmarks/rd.py

clean:
	rm -rf $(REPORT_DIR) .pytest_cache build *.egg-info src/*.egg-info
