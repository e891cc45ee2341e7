# VTT Studio: `make run` starts the app, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: run test lint format bench bench-gpu demo-assets reproduce browser redis clean fuzz

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch is pinned first: a looser requirement would fetch a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/streamlit run server.py --server.port $(PORT) --server.headless true --server.fileWatcherType none \
	  --client.toolbarMode minimal --browser.gatherUsageStats false \
	  --server.maxUploadSize $$($(PY) -c "from study import settings; print(settings.get('VTT_MAX_UPLOAD_MB'))")

# Debian's Chromium for the browser tests; skipped quietly where we cannot install it.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "chromium not installed: browser tests will skip"; }

# Debian's Redis for the test of jobs run by a worker in another process (VTT_JOB_BROKER);
# skipped quietly where we cannot install it.
redis:
	@command -v redis-server >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) || \
	  echo "redis-server not installed: the job worker test will skip"; }

# Two worker processes (pytest-xdist), each test file kept on one: about 16 minutes on the
# 2-core development machine instead of 23 one after the other.
test: $(STAMP) browser redis
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -n 2 --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) -m benchmarks

# On a machine with an NVIDIA GPU: sampling speed of the demo generator, batched (compiled) and
# single (compiled into CUDA graphs), then of its few-step student.
bench-gpu: $(STAMP)
	$(PY) benchmarks/bench_sample.py --checkpoint data/demo/checkpoint --device cuda --batch 256 --compile
	$(PY) benchmarks/bench_sample.py --checkpoint data/demo/checkpoint --device cuda --batch 1 \
	  --compile --compile-mode reduce-overhead
	$(PY) benchmarks/bench_sample.py --checkpoint data/demo/student --device cuda --batch 1 \
	  --sampler ddim --steps 4 --guidance 1

# Rebuild data/demo (generator, student, images) as it was made on an H100 (see data/README.md);
# resumable: run it again after --max-minutes pauses the training.
DEMO_ARGS ?= --device cuda --compile --max-minutes 9
demo-assets: $(STAMP)
	$(PY) -m synth demo-assets $(DEMO_ARGS)

# The seed study's evaluation on a PI-CAI folder, end to end and resumable (README):
#   make reproduce DATA=path/to/picai [OUT=reproduce] [ARGS="--device cuda" or "--quick"]
OUT ?= reproduce
reproduce: $(STAMP)
	@test -n "$(DATA)" || { echo "usage: make reproduce DATA=path/to/picai [OUT=reproduce] [ARGS=--quick]"; exit 2; }
	$(PY) -m study reproduce --data "$(DATA)" --out "$(OUT)" $(ARGS)

# The importers under 10,000 generated and mutated inputs (VTT_FUZZ_EXAMPLES to change it);
# `make test` runs a fixed slice of 1,000.
fuzz: $(STAMP)
	VTT_FUZZ_EXAMPLES=$${VTT_FUZZ_EXAMPLES:-10000} $(PY) -m pytest tests/fuzz -q -p no:cacheprovider \
	  --hypothesis-profile=fuzz

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
