# `make run` sets everything up and opens the studio; `make test` sets up and runs the suite.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PYTHON ?= python3
# g++ and cmake build llama-cpp-python (a dependency that ships as source)
APT_PACKAGES := libgl1 libxkbcommon0 libegl1 libglib2.0-0 libfontconfig1 libdbus-1-3 \
	libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
	libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0 libportaudio2 libsndfile1 xvfb xauth \
	fluid-soundfont-gm g++ cmake \
	openclipart-png fonts-noto-color-emoji fonts-dejavu-core fonts-symbola unicode-cldr-core \
	ruby-gemojione
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export HF_HUB_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: run test setup system venv lint bench screenshot clean train-sketch

run: setup
	@if [ -z "$$DISPLAY" ] && [ -z "$$WAYLAND_DISPLAY" ] && [ -z "$$QT_QPA_PLATFORM" ]; then \
		echo "No display found: running under xvfb-run (set DISPLAY to see the window)."; \
		xvfb-run -a $(VENV)/bin/studio; \
	else $(VENV)/bin/studio; fi

test: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q $(PYTEST_ARGS)

setup: system venv

# Debian/Ubuntu libraries Qt and PortAudio need; skipped when all are present.
system:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if command -v apt-get >/dev/null; then \
			echo "Installing system packages:" $$missing; \
			$(SUDO) apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
		else echo "Please install the equivalents of: $$missing"; fi; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements-nodeps.txt
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	$(PIP) install -q 'ray==2.60.0'  # the cluster tests (studio[cluster] adds ray[default])
	$(PIP) install -q --no-deps -r requirements-nodeps.txt
	touch $@

# ruff, then the room contracts (import-linter, [tool.importlinter]), then the type checker
# ([tool.mypy]); see docs/ARCHITECTURE.md.
lint: setup
	$(VENV)/bin/ruff check studio tests benchmarks models
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

bench: setup
	for b in benchmarks/*.py; do echo "== $$b"; QT_QPA_PLATFORM=offscreen $(PY) $$b; done

# The built-in sketch model (models/sketch/): the full recipe from scratch on the packaged
# clip art and emoji, then its colour/object benchmark; the weights land in models/sketch/.
SKETCH_STEPS ?= 20000
train-sketch: setup system
	$(PY) models/sketch/train.py --steps $(SKETCH_STEPS) --name sketch-$$(date +%Y%m%d-%H%M%S)
	QT_QPA_PLATFORM=offscreen $(PY) benchmarks/sketch_adherence.py \
		--out models/sketch/adherence.json --grid models/sketch/heldout.png

screenshot: setup
	xvfb-run -a -s "-screen 0 1400x900x24" $(PY) tools/screenshot.py assets/screenshot.png

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .import_linter_cache .grimp_cache
