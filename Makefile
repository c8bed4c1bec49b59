# crmd: a plain Makefile. `make` builds build/crmd; `make run` and `make check`
# first install any missing Debian packages (see `deps`).

CC      ?= gcc
PKGS    := libh2o-evloop jansson sqlite3 libssl libcrypto libpq libcurl
# What building and running need (make run), and what the tests add (make check).
# python3: the build generates the OpenAPI document's and the board's C sources
# with it ($(PYTHON)), and a minimal Debian 12 (a container's) has none.
DEBS_RUN  := build-essential pkg-config libh2o-dev libh2o-evloop-dev libjansson-dev \
             libsqlite3-dev libssl-dev libpq-dev sqlite3 curl \
             libcurl4-openssl-dev python3
DEBS_TEST := libcriterion-dev python3-pytest python3-pytest-xdist python3-requests postgresql
# tests/api validates every response against openapi/openapi.json, and reads /metrics with
# Prometheus' own text parser.
DEBS_TEST += python3-jsonschema python3-prometheus-client
# tests/faults: wrk drives the soak; e2fsprogs makes the small file system of the disk tests;
# python3-h2 (with python3-hyperframe and python3-hpack) is the HTTP/2 client of the memory tests.
DEBS_TEST += wrk e2fsprogs python3-h2 python3-hyperframe python3-hpack
PYTHON  := /usr/bin/python3

OPT     ?= -O2
SAN     ?=
CFLAGS  := -std=c17 -D_GNU_SOURCE -DH2O_USE_LIBUV=0 $(OPT) -g -Wall -Wextra -Werror \
           -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers $(SAN) \
           -Isrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
LDFLAGS := $(SAN)

BUILD   ?= build
SRCS    := $(shell find src -name '*.c' | sort)
# The OpenAPI document, compiled in for GET /openapi.json (src/api/openapi.c):
# a C source generated at build time; the build fails when it is not JSON.
GEN_OPENAPI = $(BUILD)/gen/openapi_json.c
# The board's files (web/, served by src/api/board.c), compiled in the same way.
WEB_FILES := $(wildcard web/*)
GEN_OBJS := $(BUILD)/obj/gen/openapi_json.o $(BUILD)/obj/gen/board_files.o
OBJS    := $(SRCS:src/%.c=$(BUILD)/obj/%.o) $(GEN_OBJS)
LIBOBJS := $(filter-out $(BUILD)/obj/main.o,$(OBJS))
UNIT    := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(wildcard tests/unit/test_*.c))

.PHONY: all deps deps-run run check unit unit-postgres api api-sqlite api-postgres clean format format-check FORCE
all: $(BUILD)/crmd

# What `crmd --version` prints: VERSION_BASE, and the commit (+dirty) when
# built from a git checkout; a tarball without .git builds as VERSION_BASE.
VERSION_BASE := 0.14.0
GIT_REV      := $(shell [ -e .git ] && git rev-parse --short HEAD 2>/dev/null)
CRMD_VERSION := $(VERSION_BASE)$(if $(GIT_REV),+g$(GIT_REV)$(shell git diff --quiet HEAD -- 2>/dev/null || echo .dirty))
# Rewritten only when the version changes, so main.o is rebuilt only then.
$(BUILD)/version.h: FORCE
	@mkdir -p $(BUILD)
	@printf '#define CRMD_VERSION "%s"\n' '$(CRMD_VERSION)' > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/obj/main.o: $(BUILD)/version.h
$(BUILD)/obj/main.o: CFLAGS += -I$(BUILD)

$(BUILD)/crmd: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/gen/openapi_json.c: openapi/openapi.json scripts/gen-openapi-c.py scripts/genc.py
	@mkdir -p $(dir $@)
	$(PYTHON) scripts/gen-openapi-c.py $< $@

$(BUILD)/gen/board_files.c: $(WEB_FILES) scripts/gen-board-c.py scripts/genc.py
	@mkdir -p $(dir $@)
	$(PYTHON) scripts/gen-board-c.py web $@

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -g,$(CFLAGS)) -c -o $@ $<

# Unit tests link every object but main.o, so a test can call anything.
$(BUILD)/unit/%: tests/unit/%.c $(LIBOBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LIBOBJS) $(LDFLAGS) $(LDLIBS) -lcriterion

-include $(OBJS:.o=.d)

# Installs what is missing with apt-get when root; otherwise prints the exact
# command and stops. deps-run: what make run needs; deps: everything.
deps: DEBS = $(DEBS_RUN) $(DEBS_TEST)
deps-run: DEBS = $(DEBS_RUN)
deps deps-run:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    (apt-get install -y -q $$missing || (apt-get update -q && apt-get install -y -q $$missing)) >&2 || exit 1; \
	  else \
	    echo "missing Debian packages; run:  sudo apt-get install -y$$missing" >&2; exit 1; \
	  fi; \
	fi

run: deps-run
	@$(MAKE) --no-print-directory all
	@./scripts/run.sh $(BUILD)/crmd

# Runs every unit binary, also after one failed, then says how many passed
# and failed; fails if any did.
unit: $(UNIT)
	@pass=0; fail=0; failed=""; \
	for t in $(UNIT); do \
	  echo "== $$t"; \
	  if $$t; then pass=$$((pass + 1)); echo "-- $${t##*/}: passed"; \
	  else fail=$$((fail + 1)); failed="$$failed $${t##*/}"; echo "-- $${t##*/}: FAILED"; fi; \
	done; \
	[ -z "$$failed" ] || echo "failed:$$failed"; \
	echo "unit: $$pass passed, $$fail failed"; \
	[ $$fail -eq 0 ]

# The store's contract tests (tests/unit/test_store.c) run on SQLite in
# `make unit`; unit-postgres runs them again in a throwaway PostgreSQL
# cluster (scripts/pg-cluster.sh), each test in a database of its own.
unit-postgres: $(BUILD)/unit/test_store
	scripts/pg-cluster.sh run sh -c 'CRMD_TEST_DB="$$CRMD_TEST_PG_URL" exec $(abspath $(BUILD)/unit/test_store)'

# The API suite runs on both backends: SQLite, then PostgreSQL in a throwaway
# cluster that scripts/pg-cluster.sh makes (as the postgres user when root) and
# removes; without PostgreSQL that second run fails.
api: api-sqlite api-postgres

# The SQLite runs spread the suite's files over TEST_WORKERS processes
# (pytest-xdist): most of its time is spent waiting (webhook retries, time
# limits), and every test makes its own servers on ports and files of its own.
# The PostgreSQL run spreads them too, but for test_postgres.py, which runs
# after the others on its own: some of its tests stop the shared cluster.
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadfile

api-sqlite: $(BUILD)/crmd
	CRMD_BIN=$(abspath $(BUILD)/crmd) $(PYTHON) -m pytest -q --durations=10 $(XDIST) tests/api

api-postgres: $(BUILD)/crmd
	scripts/pg-cluster.sh run env CRMD_TEST_BACKEND=postgres CRMD_BIN=$(abspath $(BUILD)/crmd) sh -c \
	  '$(PYTHON) -m pytest -q --durations=10 $(XDIST) --ignore=tests/api/test_postgres.py tests/api && \
	   $(PYTHON) -m pytest -q --durations=10 tests/api/test_postgres.py'

# Builds run on every core (the steps themselves one after the other).
JOBS ?= $(shell nproc)

# Each step prints how long it took, so a slow CI run shows where its time
# went without a second run.
CHECK_STEPS := format-check all openapi-lint unit-verify unit api-sqlite api-postgres board-test \
  unit-postgres api-asan fuzz faults faults-postgres bench-smoke
check: deps
	@for step in $(CHECK_STEPS); do \
	  start=$$(date +%s); \
	  case $$step in all|unit) jobs=-j$(JOBS) ;; *) jobs= ;; esac; \
	  $(MAKE) --no-print-directory $$jobs $$step FUZZ_SECONDS=$(FUZZ_CHECK_SECONDS) || exit 1; \
	  echo "check: $$step took $$(( $$(date +%s) - start )) s"; \
	done

# The OpenAPI document (openapi/, see its README): `make openapi-lint` runs
# @redocly/cli's recommended rules over it. The linter (and the board tests'
# playwright-core and axe-core) is installed with npm from
# tools/package-lock.json into tools/node_modules; it needs Node.js >=
# 20.19 with npm on PATH (Debian 12's own nodejs 18 is too old).
REDOCLY := tools/node_modules/.bin/redocly
.PHONY: openapi-lint
$(REDOCLY): tools/package.json tools/package-lock.json
	@node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a == 20 && b >= 19) ? 0 : 1)' \
	  2>/dev/null || { \
	  echo "openapi-lint needs Node.js >= 20.19 and npm on PATH (found: $$(node --version 2>/dev/null || echo none))" >&2; exit 1; }
	npm ci --prefix tools --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

# The board's end-to-end tests (tests/board): headless Chromium, Debian's
# own (BOARD_CHROMIUM), driven by playwright-core from the same npm install
# as the linter; screenshots of every step go to build/board.
DEBS_TEST += chromium
BOARD_CHROMIUM ?= /usr/bin/chromium
.PHONY: board-test
board-test: $(BUILD)/crmd $(REDOCLY)
	@mkdir -p $(BUILD)/board
	CRMD_BIN=$(abspath $(BUILD)/crmd) CHROMIUM=$(BOARD_CHROMIUM) BOARD_SHOTS=$(abspath $(BUILD)/board) \
	  node --test --test-concurrency=1 tests/board/board.test.mjs

# The board's speed on 500 leads (bench/board.mjs), appended to bench/results.md.
.PHONY: bench-board
bench-board: $(BUILD)/crmd $(REDOCLY)
	CRMD_BIN=$(abspath $(BUILD)/crmd) CHROMIUM=$(BOARD_CHROMIUM) node bench/board.mjs | tee -a bench/results.md

openapi-lint: $(REDOCLY)
	REDOCLY_TELEMETRY=off $(REDOCLY) lint --config openapi/redocly.yaml openapi/openapi.json

# Fault-injection and load tests (tests/faults, see its README; root, as they
# mount a small file system): kills, full and read-only disk, slow clients,
# SIGTERM under load, and a 60-second soak. `make soak` runs the soak alone
# for SOAK_SECONDS (default 600).
SOAK_SECONDS ?= 600
.PHONY: faults faults-postgres soak
faults: $(BUILD)/crmd
	SOAK_SECONDS=60 CRMD_BIN=$(abspath $(BUILD)/crmd) $(PYTHON) -m pytest -q -rP --durations=10 tests/faults

# The kill tests that run on PostgreSQL too (the mixed kill test, the
# webhook kill test) and the one of two processes on one database, in a
# throwaway cluster (scripts/pg-cluster.sh); about a minute.
faults-postgres: $(BUILD)/crmd
	scripts/pg-cluster.sh run env CRMD_TEST_BACKEND=postgres CRMD_BIN=$(abspath $(BUILD)/crmd) \
	  $(PYTHON) -m pytest -q -rP --durations=10 tests/faults

soak: deps
	@$(MAKE) --no-print-directory all
	SOAK_SECONDS=$(SOAK_SECONDS) CRMD_BIN=$(abspath $(BUILD)/crmd) $(PYTHON) -m pytest -q -s tests/faults/test_soak.py

# The benchmark (bench/run, issue 4): its own optimised build in build/bench,
# wrk and nginx on 127.0.0.1; results appended to bench/results.md.
# bench-smoke is a quick run that fails on any non-2xx response or crash.
# BENCH_ARGS passes options, e.g. make bench BENCH_ARGS="--full --perf".
.PHONY: bench bench-smoke
bench: deps
	bench/run $(BENCH_ARGS)

bench-smoke: deps
	bench/run --smoke

# Hostile input (issue 5). `make fuzz` builds the libFuzzer targets
# (tests/fuzz, clang -fsanitize=fuzzer,address,undefined, every src/ file
# but main.c) in build/fuzz and runs each for FUZZ_SECONDS from its seed
# corpus; `make asan` builds build/asan/crmd with ASan+UBSan, and `make
# api-asan` runs the API suite against it (and the PostgreSQL-only tests on
# PostgreSQL), failing on any report. `make
# check` runs both, the fuzzers for FUZZ_CHECK_SECONDS each.
DEBS_TEST    += clang libclang-rt-14-dev llvm
FUZZ_SECONDS ?= 60
FUZZ_CHECK_SECONDS ?= 10
FUZZ_BUILD   := build/fuzz
FUZZ_CC      := clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# The fuzz build is clang with the same warnings as errors as the gcc build.
FUZZ_CFLAGS   = $(filter-out -O% $(SAN),$(CFLAGS)) -O1 $(FUZZ_SAN)
FUZZ_OBJS    := $(patsubst src/%.c,$(FUZZ_BUILD)/obj/%.o,$(filter-out src/main.c,$(SRCS))) \
                $(FUZZ_BUILD)/obj/gen/openapi_json.o $(FUZZ_BUILD)/obj/gen/board_files.o
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(wildcard tests/fuzz/fuzz_*.c))
ASAN_BUILD   := build/asan
-include $(FUZZ_OBJS:.o=.d) $(FUZZ_TARGETS:=.d)

.PHONY: fuzz fuzz-build asan api-asan api-asan-postgres
$(FUZZ_BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_TARGETS): $(FUZZ_BUILD)/%: tests/fuzz/%.c tests/fuzz/common.c $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Itests/fuzz -MMD -MP -MF $@.d -o $@ $< \
	  tests/fuzz/common.c $(FUZZ_OBJS) $(LDLIBS)

fuzz-build: $(FUZZ_TARGETS)

# The targets run FUZZ_JOBS at a time: each is one process on one core.
FUZZ_JOBS ?= $(JOBS)
fuzz: deps
	@$(MAKE) --no-print-directory -j$(JOBS) fuzz-build
	@printf '%s\n' $(FUZZ_TARGETS) | xargs -P $(FUZZ_JOBS) -I{} tests/fuzz/run.sh {} $(FUZZ_SECONDS)

asan:
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=$(ASAN_BUILD) OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer" $(ASAN_BUILD)/crmd

# The PostgreSQL-only tests (reads that complete later on the loop, lost
# connections, an outage, clients gone while their reads wait) run against
# the same build on a throwaway cluster, but for six `crmd migrate` started
# at once: under ASan on two busy cores one may miss its 2 s connect timeout,
# and that blocking command-line path runs in make api-postgres anyway.
# `make api-asan-postgres` runs the whole suite on PostgreSQL so (about
# three minutes). Tests marked `waits` (tests/api/conftest.py: seconds spent
# waiting for the server's timers) run only in make api. The apps the tests
# get are made by the release build
# (CRMD_SETUP_BIN, tests/api/apiutil.py): some 700 sanitized starts cost
# over a minute; the tests of `crmd app create` itself run the ASan build.
ASAN_SETUP := CRMD_SETUP_BIN=$(abspath $(BUILD)/crmd)
api-asan: asan $(BUILD)/crmd
	$(ASAN_SETUP) tests/fuzz/api_asan.sh $(ASAN_BUILD)/crmd $(XDIST) -m 'not waits'
	$(ASAN_SETUP) scripts/pg-cluster.sh run env CRMD_TEST_BACKEND=postgres \
	  tests/fuzz/api_asan.sh $(ASAN_BUILD)/crmd tests/api/test_postgres.py -k 'not migrating_together' -m 'not waits'

api-asan-postgres: asan $(BUILD)/crmd
	$(ASAN_SETUP) scripts/pg-cluster.sh run env CRMD_TEST_BACKEND=postgres tests/fuzz/api_asan.sh $(ASAN_BUILD)/crmd

# The C sources clang-format keeps in the repo's style (.clang-format): all
# of src/, subfolders included, and the unit and fuzz tests. A block kept
# verbatim on purpose (the fuzz test key) says so with `// clang-format off`.
# `make format` rewrites them; `make format-check` (first in make check)
# fails on any that differs, naming the lines.
DEBS_TEST    += clang-format
FORMAT_FILES  = $(shell find src -name '*.[ch]' | sort) \
                $(wildcard tests/unit/*.c tests/unit/*.h tests/fuzz/*.c tests/fuzz/*.h)

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	@clang-format --dry-run -Werror $(FORMAT_FILES) && echo "format-check: $(words $(FORMAT_FILES)) files formatted"

# `make install` (PREFIX, DESTDIR as usual): the binary, the man page crmd(1),
# the systemd unit (paths filled in) and an example config, kept when one is
# there. UNITDIR and SYSCONFDIR follow PREFIX (/usr: /lib/systemd/system, /etc).
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR    ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
.PHONY: install unit-verify
install: $(BUILD)/crmd
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR) \
	  $(DESTDIR)$(SYSCONFDIR)/crmd
	install -m 0755 $(BUILD)/crmd $(DESTDIR)$(BINDIR)/crmd
	install -m 0644 docs/crmd.1 $(DESTDIR)$(MANDIR)/man1/crmd.1
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' dist/crmd.service \
	  > $(DESTDIR)$(UNITDIR)/crmd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/crmd.service
	[ -e $(DESTDIR)$(SYSCONFDIR)/crmd/crmd.conf ] || \
	  install -m 0644 dist/crmd.conf $(DESTDIR)$(SYSCONFDIR)/crmd/crmd.conf

# The unit checked by systemd-analyze (Debian package systemd; no running
# systemd needed): its ExecStart pointed at the built binary, and any
# warning (an unknown key, a bad value) fails, since verify itself exits 0.
DEBS_TEST += systemd
unit-verify: $(BUILD)/crmd
	@mkdir -p $(BUILD)/unit-verify
	@sed -e 's|@BINDIR@|$(abspath $(BUILD))|g' -e 's|@SYSCONFDIR@|/etc|g' dist/crmd.service \
	  > $(BUILD)/unit-verify/crmd.service
	@out=$$(systemd-analyze verify --man=no $(BUILD)/unit-verify/crmd.service 2>&1); rc=$$?; \
	  if [ $$rc -ne 0 ] || [ -n "$$out" ]; then echo "$$out"; echo "unit-verify: failed"; exit 1; fi; \
	  echo "unit-verify: dist/crmd.service verified"

clean:
	rm -rf $(BUILD)
