# Two commands on a fresh machine (Python 3.11 + make):
#   make serve   install into .venv and serve the wiki with the demo content on http://127.0.0.1:5000
#   make test    install into .venv (with test extras) and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
HOST   ?= 127.0.0.1
PORT   ?= 5000
PIP     = $(VENV)/bin/pip

.PHONY: serve test bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e '.[test,postgres]'
	@touch $@ $(VENV)/.installed

# The demo content lives inside this project's git repository: keep its revisions in the data dir
# instead of committing browser edits here. With your own WIKI_CONTENT_DIR, history is automatic.
serve: export WIKI_HISTORY ?= $(if $(WIKI_CONTENT_DIR),auto,files)
serve: $(VENV)/.installed
	$(VENV)/bin/wiki serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-test
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# Every benchmark at its default sizes, one after the other (slow: several build 10,000-document
# corpora); docs/benchmarks.md gives each one's options. The 100k search run is separate:
# bench/search.py --docs 100000.
bench: $(VENV)/.installed-test
	$(VENV)/bin/python bench/startup.py
	$(VENV)/bin/python bench/search.py
	$(VENV)/bin/python bench/match.py
	$(VENV)/bin/python bench/similar_latency.py
	$(VENV)/bin/python bench/similar_eval.py
	$(VENV)/bin/python bench/chat.py
	$(VENV)/bin/python bench/editor.py

clean:
	rm -rf $(VENV) .wiki-data build *.egg-info
