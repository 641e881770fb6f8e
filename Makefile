# Set-up and the two commands of the README: `make demo` and `make test`.
# Everything installs into .venv in one resolver pass (uv, with torch's CPU build pinned in pyproject.toml).

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.8

# torch's CPU wheel: from a local wheel folder where pip's configuration names one (the project's build
# machines), otherwise from PyTorch's CPU index (PyPI's own torch wheel is the multi-GB CUDA build).
WHEELS := $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null)
ifneq ($(strip $(WHEELS)),)
TORCH_SOURCE := $(foreach w,$(WHEELS),--find-links $(w))
else
TORCH_SOURCE := --extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match
endif

.PHONY: install setup browser demo test clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --python $(BIN)/python --compile-bytecode $(TORCH_SOURCE) -e ".[test]"
	touch $@

install: $(VENV)/.installed

# One-time, cached work (anny's model cache, MediaPipe's task bundle): built once, reused by every run/test.
setup: install
	$(BIN)/socialmirror setup

# Headless Chromium for the viewer.html browser test (Debian's package; the test skips where it is absent).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) \
	  || echo "chromium not installed: the browser test of viewer.html will be skipped"; }

demo: setup
	$(BIN)/socialmirror demo

test: setup browser
	$(BIN)/python -m pytest

clean-venv:
	rm -rf $(VENV)
