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
	@command -v pngquant >/dev/null && command -v cwebp >/dev/null && command -v cjpeg >/dev/null || \
		(command -v apt-get >/dev/null && (apt-get install -y -qq pngquant webp libjpeg-turbo-progs || \
		(apt-get update -qq && apt-get install -y -qq pngquant webp libjpeg-turbo-progs))) || \
		echo "pngquant, cwebp or cjpeg not installed: their rows are skipped"
	$(PY) benchmarks/quantize.py
	$(PY) benchmarks/rd.py
	$(PY) benchmarks/e2e.py
	$(PY) -m pytest -q -m slow tests/test_perf_guards.py

clean:
	rm -rf $(REPORT_DIR) .pytest_cache build *.egg-info src/*.egg-info
