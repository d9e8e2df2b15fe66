# itemrec: `make demo` runs the whole product on the bundled sample; `make test` runs the tests.
# Each creates (once) its own virtual environment in .venv with Python 3.10+.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MVN := mvn -o -B --no-transfer-progress -Dmaven.repo.local=/usr/share/maven-repo -f android_demo/core/pom.xml
DEMO_OUT ?= demo_out

.PHONY: venv test test-fast test-python test-java check-android demo bench lint sample devdata wheel clean \
	check-edge-install check-aarch64 check-units check-install-chroot

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[train,edge,edge-serve,edge-wedge,dev]'
	touch $@

test: test-java test-python
	@command -v mvn >/dev/null 2>&1 || printf '%s\n' "$(JAVA_SKIPPED)" >&2

test-python: $(STAMP)
	$(BIN)/python -m pytest -q

# Everything but the tests that train or convert a real model (marker `slow`).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# The Android core's JUnit suite, offline with Debian's Maven (see .ci/run for the packages).
# Without mvn it is skipped with a warning (repeated at the end of `make test`); under CI it fails.
JAVA_SKIPPED := WARNING: mvn not found, the Android core's JUnit suite was SKIPPED (apt-get install maven junit4 libsurefire-java libmaven-compiler-plugin-java libmaven-resources-plugin-java, see .ci/run)
test-java:
	@if command -v mvn >/dev/null 2>&1; then $(MVN) test; \
	else printf '\n%s\n\n' "$(JAVA_SKIPPED)" >&2; [ -z "$$CI" ]; fi

# The Android app's Java with javac -Xlint:all -Werror against Debian's API-23 android.jar (downloaded
# once, 14 MB) and stubs of the AndroidX/CameraX/LiteRT calls; about 10 s. See android_demo/compile-check/.
check-android:
	android_demo/compile-check/compile-app.sh

demo: $(STAMP)
	$(BIN)/python scripts/demo.py --out $(DEMO_OUT)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# Style (ruff) and the package arrows (import-linter contracts in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# dist/itemrec-<version>-py3-none-any.whl: what a Raspberry Pi installs (docs/raspberry-pi.md).
wheel: $(STAMP)
	rm -rf dist build/lib build/bdist.*
	$(BIN)/python -m pip wheel -q --no-deps -w dist .
	@ls dist/*.whl

# Each device extra of the wheel resolves to binary wheels for a 64-bit Raspberry Pi
# (linux aarch64, CPython 3.11 and 3.13): pip --dry-run against the package index (~30 s).
check-aarch64: wheel
	$(BIN)/python scripts/check_device_resolution.py "$$(ls dist/itemrec-*.whl)"

# systemd-analyze verify of every unit in deploy/, its ExecStart pointed at this checkout's venv
# (the unit's /opt/itemrec/venv exists only on a device; check-install-chroot verifies the unit
# verbatim there). Bookworm's systemd 252 warns about RestartSteps/RestartMaxDelaySec (254+):
# those two warnings are expected, any other output fails.
check-units: $(STAMP)
	@command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing: apt-get install systemd"; exit 1; }
	@tmp=$$(mktemp -d) && for unit in deploy/*.service; do \
		sed 's#/opt/itemrec/venv#$(abspath $(VENV))#g' $$unit > $$tmp/$$(basename $$unit); done && \
	systemd-analyze verify $$tmp/*.service > $$tmp/log 2>&1; status=$$?; \
	grep -v -E "Unknown key '(RestartSteps|RestartMaxDelaySec)'" $$tmp/log > $$tmp/other; \
	cat $$tmp/log; failed=0; [ $$status -eq 0 ] && [ ! -s $$tmp/other ] || failed=1; \
	rm -rf $$tmp; if [ $$failed -ne 0 ]; then echo "check-units: FAILED"; exit 1; fi; \
	echo "check-units: $$(ls deploy/*.service | wc -l) unit(s) verified"

# The install script in a fresh Debian (debootstrap chroot, ~1 GB, several minutes, needs root
# and the Debian and Python package archives): creates the user, state directory, venv and
# the enabled unit. Not in CI (too heavy); see docs/raspberry-pi.md for the figures.
check-install-chroot: wheel
	scripts/check_install_chroot.sh "$$(ls dist/itemrec-*.whl)"

# Rebuild data/sample from the npm tarballs (needs npm and the registry).
sample: $(STAMP)
	$(BIN)/python scripts/build_sample.py

# The development benchmark (1,300 classes, open-set split) in build/devdata: npm packages,
# not committed; about 1 minute and 60 MB of downloads (scripts/build_devdata.py).
DEVDATA ?= build/devdata
devdata: $(DEVDATA)/manifest.json

$(DEVDATA)/manifest.json: scripts/build_devdata.py scripts/build_sample.py | $(STAMP)
	$(BIN)/python scripts/build_devdata.py --out $(DEVDATA)

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache

# The device install from the wheel: only the `edge` extra, in a fresh venv. The runtime must
# import and run without TensorFlow; nothing outside `itemrec.` is importable (a user's own
# train.py stays theirs); the four commands start. Then the `edge-serve` extra: the server
# imports, still without TensorFlow, and the page is in the wheel.
EDGE_VENV ?= .venv-edge
check-edge-install: wheel
	rm -rf $(EDGE_VENV) && $(PYTHON) -m venv $(EDGE_VENV)
	$(EDGE_VENV)/bin/python -m pip install -q "$$(ls dist/itemrec-*.whl)[edge]"
	cd / && $(abspath $(EDGE_VENV))/bin/python -c "import sys, itemrec.edge_runtime.cli, \
	itemrec.edge_runtime.interpreter; assert 'tensorflow' not in sys.modules; \
	import importlib.util as u; \
	assert not any(u.find_spec(name) for name in ('train', 'convert', 'edge_runtime')), 'top-level'; \
	print('edge-only install OK; tensorflow installed:', u.find_spec('tensorflow') is not None)"
	for tool in itemrec-edge itemrec-train itemrec-eval itemrec-convert; do \
		$(EDGE_VENV)/bin/$$tool --help >/dev/null || exit 1; done
	$(EDGE_VENV)/bin/itemrec-edge serve --help >/dev/null
	$(EDGE_VENV)/bin/python -m pip install -q "$$(ls dist/itemrec-*.whl)[edge,edge-serve]"
	cd / && $(abspath $(EDGE_VENV))/bin/python -c "import sys, itemrec.edge_runtime.server.serve \
	as s, importlib.resources as r; assert 'tensorflow' not in sys.modules; \
	page = r.files('itemrec.edge_runtime.server') / 'static' / 'index.html'; \
	assert page.is_file(), 'the page is not in the wheel'; print('edge-serve install OK')"
