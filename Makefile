# novadocker: `make demo` and `make test` are the two commands a newcomer needs.
# Every target installs what is missing first and is safe to run again.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
PYTEST_TIMEOUT ?= 300
PYTEST_ARGS ?=

.PHONY: all deps deps-apt demo test test-integration bench genconfig clean distclean

all: test

deps: deps-apt .stamp-pip

# dpkg-query for each package every time (well under a second); apt-get
# update and install only when something is missing.
deps-apt:
	@tools/install-deps.sh

$(VPY):
	$(PYTHON) -m venv $(VENV)

# Re-installs when the requirement lists or the packaging metadata change.
# pbr takes the version from git, so the tree must be a git checkout.
.stamp-pip: requirements.txt test-requirements.txt setup.cfg setup.py | $(VPY)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r requirements.txt -r test-requirements.txt
	$(VPY) -m pip install -q -e .
	@# An editable install skips data_files: put the nova.virt shim's .pth
	@# (compute_driver = novadocker.DockerDriver) where a wheel install puts it.
	cp novadocker-nova.pth "$$($(VPY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/"
	@touch $@

demo: deps
	tools/demo.sh

# Real Nova and real Heat cannot share a Python process with each other (nor,
# for Nova's eventlet mode, with the rest): each runs in a pytest of its own
# (tests/integration/conftest.py). Nova runs in both of its concurrency modes.
# Every run happens; the recipe fails if any of them failed.
INTEGRATION_ARGS ?=
PYTEST_RUN = $(VPY) -m pytest --timeout=$(PYTEST_TIMEOUT)

test: deps
	@rc=0; \
	$(PYTEST_RUN) --junitxml=build/junit.xml $(PYTEST_ARGS) || rc=1; \
	$(MAKE) --no-print-directory test-integration || rc=1; \
	exit $$rc

test-integration: deps
	@rc=0; \
	echo "== real Nova, eventlet"; \
	$(PYTEST_RUN) --integration=nova --junitxml=build/junit-nova.xml \
	    $(INTEGRATION_ARGS) tests/integration || rc=1; \
	echo "== real Nova, native threads"; \
	OS_NOVA_DISABLE_EVENTLET_PATCHING=1 $(PYTEST_RUN) --integration=nova \
	    --junitxml=build/junit-nova-threading.xml \
	    $(INTEGRATION_ARGS) tests/integration || rc=1; \
	echo "== real Heat"; \
	$(PYTEST_RUN) --integration=heat --junitxml=build/junit-heat.xml \
	    $(INTEGRATION_ARGS) tests/integration || rc=1; \
	exit $$rc

bench: deps
	$(VPY) benchmarks/run.py

genconfig: deps
	$(VENV)/bin/oslo-config-generator \
	    --config-file etc/oslo-config-generator/novadocker-engine.conf && \
	$(VENV)/bin/oslo-config-generator --config-file etc/oslo-config-generator/novadocker-compute.conf && \
	$(VENV)/bin/oslo-config-generator --config-file etc/oslo-config-generator/novadocker-heat.conf

clean:
	rm -rf build .pytest_cache .demo .stamp-*
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -print0 \
	    | xargs -0 rm -rf

distclean: clean
	rm -rf $(VENV) *.egg-info AUTHORS ChangeLog
