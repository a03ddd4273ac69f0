# make demo / make test create .venv/ (and the serving environment .venv-serve/) on first use;
# nothing else needs installing by hand.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The online serving runtime has pins of its own (environments/serve.conda.yml, see its header):
# azureml-inference-server-http cannot share .venv's dependency set.
SERVE_VENV := .venv-serve
SERVE_PINS := environments/serve.conda.yml
SERVE_STAMP := $(SERVE_VENV)/.installed

.PHONY: install demo serve test test-fast bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The pip pins of the conda file (lines "- name==version"), installed as they are.
$(SERVE_STAMP): $(SERVE_PINS)
	test -x $(SERVE_VENV)/bin/python || $(PYTHON) -m venv $(SERVE_VENV)
	sed -n 's/^[[:space:]]*-[[:space:]]*\([A-Za-z0-9_.-]*==[^[:space:]#]*\).*/\1/p' $(SERVE_PINS) > $(SERVE_VENV)/requirements.txt
	$(SERVE_VENV)/bin/python -m pip install --quiet -r $(SERVE_VENV)/requirements.txt
	touch $(SERVE_STAMP)

install: $(STAMP) $(SERVE_STAMP)

demo: $(STAMP) $(SERVE_STAMP)
	$(VENV)/bin/refinery demo --workdir .refinery-demo

# The demo's champion on http://127.0.0.1:5001/score (run make demo first); Ctrl-C stops.
serve: $(STAMP) $(SERVE_STAMP)
	$(VENV)/bin/refinery serve --lake .refinery-demo/lake

test: $(STAMP) $(SERVE_STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP) $(SERVE_STAMP)
	$(PY) -m pytest -q -m "not slow"

clean:
	rm -rf .refinery-demo .pytest_cache
