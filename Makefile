# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# what the ahead-of-time kernels are built from (setup.py): an edit reinstalls, which rebuilds them
AOT_SOURCES := setup.py src/imcompress/_aot.py src/imcompress/kmeans/_kernels.py src/imcompress/kmeans/_kernel_spec.py \
	$(addprefix src/imcompress/entropy/,_index_kernels.py _index_spec.py _rangecoder.py _queued.py) \
	src/imcompress/io/_filters.py src/imcompress/io/_filter_spec.py
REPORT_DIR ?= demo-report
# Bytecode of the editable install, written once: where PYTHONDONTWRITEBYTECODE is set (some
# containers and CI images) every command would otherwise compile the modules it imports again
# (about 0.06 s of a small image's `compress`)
BYTECODE := $(VENV)/.bytecode-stamp

.PHONY: demo test install bench fuzz clean chromium

$(STAMP): pyproject.toml $(AOT_SOURCES)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

$(BYTECODE): $(STAMP) $(shell find src/imcompress -name '*.py')
	$(PY) -m compileall -q src/imcompress
	@touch $(BYTECODE)

install: $(STAMP) $(BYTECODE)

demo: $(STAMP) $(BYTECODE)
	$(VENV)/bin/imcompress report -o $(REPORT_DIR) --force

# The explorer's browser tests drive Debian's Chromium (never a browser download).
chromium:
	@test -x /usr/bin/chromium || { export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
		echo "chromium could not be installed (needs Debian's apt-get as root): the browser tests skip outside CI"; }

test: $(STAMP) $(BYTECODE) chromium
	@command -v pngcheck >/dev/null || (command -v apt-get >/dev/null && \
		(apt-get install -y -qq pngcheck >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq pngcheck >/dev/null 2>&1))) || \
		echo "pngcheck not installed: its PNG checks are skipped"
	$(PY) -m pytest -n 2 --dist loadgroup -q

bench: $(STAMP) $(BYTECODE)
	$(PY) -m pip install --quiet -e '.[bench]'
	@command -v pngquant >/dev/null && command -v cwebp >/dev/null && command -v cjpeg >/dev/null || \
		(command -v apt-get >/dev/null && (apt-get install -y -qq pngquant webp libjpeg-turbo-progs || \
		(apt-get update -qq && apt-get install -y -qq pngquant webp libjpeg-turbo-progs))) || \
		echo "pngquant, cwebp or cjpeg not installed: their rows are skipped"
	$(PY) benchmarks/quantize.py
	$(PY) benchmarks/png.py
	$(PY) benchmarks/rd.py
	$(PY) benchmarks/e2e.py
	$(PY) -m pytest -q -m slow tests/test_perf_guards.py

# Coverage-guided fuzzing of the .imc decoders (opt-in; fuzz/README.md). FUZZ_SECONDS=0 runs forever.
FUZZ_SECONDS ?= 300
fuzz: $(STAMP)
	$(PY) -m pip install --quiet -e '.[fuzz]'
	$(PY) fuzz/make_corpus.py fuzz/corpus
	@mkdir -p fuzz/artifacts
	$(PY) fuzz/fuzz_decoders.py fuzz/corpus -max_total_time=$(FUZZ_SECONDS) -timeout=10 -max_len=16384 \
		-rss_limit_mb=2048 -artifact_prefix=fuzz/artifacts/ $(FUZZ_ARGS)

clean:
	rm -rf $(REPORT_DIR) .pytest_cache build *.egg-info src/*.egg-info
