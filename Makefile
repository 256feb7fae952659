# Cellar build. `make` builds build/cellard; `make run` and `make test` also
# install missing Debian packages first (scripts/ensure-deps).
#
#   make            release build of build/cellard and the unit tests
#   make run        build and start one node on 127.0.0.1:8080, data in ./data
#   make cluster    build and start three nodes on 127.0.0.1-3:7000, node 1 the
#                   meta server, data in ./cluster/ (scripts/cluster)
#   make test       make lint, then every suite: unit tests, fuzz corpus replay,
#                   then the real binary (tests/integration, tests/cluster,
#                   tests/systemd, tests/api, tests/client, tests/browser:
#                   screenshots in build/test-output/browser/)
#   make check      the same suites (lint aside) on an ASan+UBSan build
#                   (build-asan/); .ci/run runs make test, then make check
#   make valgrind   the black-box HTTP suite with every node under valgrind
#                   memcheck (slow; not part of make test)
#   make lint       clang-format check, cppcheck, banned calls, openapi.yaml
#                   (redocly), and eslint over the console's JavaScript (lint-js)
#   make bench      cellard against the libmicrohttpd ceiling, etcd and webdis
#                   (bench/README.md); installs wrk and the peers first
#   make fuzz       every libFuzzer target in tests/fuzz for FUZZ_SECONDS (default 30)
#                   each, built with clang in build-fuzz/ (tests/fuzz/fuzz.mk)
#   make install    binary, systemd units, sysusers.d/tmpfiles.d snippets and a
#                   default config, under PREFIX (default /usr/local) and DESTDIR
#   make clean

BUILD ?= build
CC ?= cc
PKGS := libmicrohttpd jansson rocksdb libcurl libsystemd gnutls

BUILD_DEBS := gcc make pkg-config libmicrohttpd-dev libjansson-dev librocksdb-dev \
              libcurl4-openssl-dev libsystemd-dev libgnutls28-dev
LINT_DEBS := clang-format cppcheck
TEST_DEBS := $(BUILD_DEBS) python3 curl
# The lifecycle tests: systemd (a real user manager, systemd-analyze,
# systemd-socket-activate), util-linux (unshare, mount), procps (kill, used
# by the units' ExecReload=).
TEST_DEBS += systemd util-linux procps
# The API suite (tests/api) runs on Debian's python3 with these; the
# generated client's test (tests/client) needs node and npm (ENSURE_NPM).
TEST_DEBS += python3-pytest python3-jsonschema python3-yaml python3-hypothesis
# The HTTPS tests make a throwaway CA with openssl; the access and cluster
# tests make network namespaces with iproute2, and the cluster's fault tests
# cut nodes apart with iptables.
TEST_DEBS += openssl iproute2 iptables
# The browser tests (tests/browser) drive Debian's chromium with playwright-core.
TEST_DEBS += chromium
# make test runs make lint.
TEST_DEBS += $(LINT_DEBS)
# Debian's python3, which sees the python3-* packages (a python3 of another
# origin earlier on PATH would not).
DEB_PYTHON := /usr/bin/python3
# make bench: the load generator and the peers it measures against.
BENCH_DEBS := $(BUILD_DEBS) python3 wrk etcd-server webdis redis-server

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla \
        -Wno-unused-parameter
ifeq ($(CI),true)
WARN += -Werror
endif

OPT ?= -O2
SAN ?=
CFLAGS := -std=gnu11 $(OPT) -g -D_GNU_SOURCE -I. $(WARN) $(SAN) -MMD -MP \
          $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
LDFLAGS := $(SAN)

LIB_SRCS := $(wildcard common/*.c storage/*.c replication/*.c api/*.c) \
            $(filter-out service/main.c,$(wildcard service/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/api/openapi_blob.o
# The web console and /docs, built into the binary (see "Console" below).
LIB_OBJS += $(BUILD)/obj/api/console_assets.o
MAIN_OBJ := $(BUILD)/obj/service/main.o
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.SECONDARY:

.PHONY: all run cluster test suites check valgrind lint clean deps deps-test deps-lint unit integration

all: $(BUILD)/cellard $(UNIT_BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# openapi.yaml is embedded in the binary (GET /openapi.yaml).
$(BUILD)/obj/api/openapi_blob.o: api/openapi_blob.S openapi.yaml
	@mkdir -p $(dir $@)
	$(CC) -I. -c $< -o $@

$(BUILD)/libcellar.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/cellard: $(MAIN_OBJ) $(BUILD)/libcellar.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libcellar.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

deps:
	@scripts/ensure-deps $(BUILD_DEBS)
	@$(ENSURE_NPM)

deps-test:
	@scripts/ensure-deps $(TEST_DEBS)
	@$(ENSURE_NPM)

deps-lint:
	@scripts/ensure-deps $(LINT_DEBS)
	@$(ENSURE_NPM)

# node and npm for the API tools. Debian's npm package is only wanted when
# there is no npm at all: a nodejs from elsewhere bundles npm and conflicts
# with Debian's npm package.
ENSURE_NPM = command -v npm >/dev/null 2>&1 || scripts/ensure-deps nodejs npm

# The npm tools (@redocly/cli for lint; openapi-typescript, openapi-fetch and
# typescript for the generated client's test), pinned by
# tests/client/package-lock.json and installed locally into build/node/.
NODE_DIR := build/node
NPM_TOOLS := $(NODE_DIR)/node_modules/.cellar-installed

$(NPM_TOOLS): tests/client/package.json tests/client/package-lock.json
	$(call npm_ci,tests/client)

# $(call npm_ci,DIR): npm ci of DIR's pinned package.json and
# package-lock.json into the folder above the target, a stamp file in its
# node_modules/.
define npm_ci
	@$(ENSURE_NPM)
	@mkdir -p $(@D)
	cp $(1)/package.json $(1)/package-lock.json $(@D)/../
	cd $(@D)/.. && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@
endef

# Console: console/assets.txt names the files served at /, /docs and
# /ui/...: ours in console/ and swagger-ui-dist (the /docs renderer), pinned
# by console/package-lock.json and fetched into build/npm/console/.
# scripts/embed-assets turns the list into an assembly file that .incbin's
# each file with its Content-Type and ETag.
CONSOLE_NPM := build/npm/console/node_modules/.cellar-installed
BROWSER_NPM := build/npm/browser/node_modules/.cellar-installed

$(CONSOLE_NPM): console/package.json console/package-lock.json
	$(call npm_ci,console)

$(BROWSER_NPM): tests/browser/package.json tests/browser/package-lock.json
	$(call npm_ci,tests/browser)

$(BUILD)/gen/console_assets.S: console/assets.txt scripts/embed-assets $(CONSOLE_NPM) \
        $(wildcard console/*.html console/*.js console/*.css console/*.svg)
	@mkdir -p $(dir $@)
	scripts/embed-assets console/assets.txt > $@.tmp
	@mv $@.tmp $@

$(BUILD)/obj/api/console_assets.o: $(BUILD)/gen/console_assets.S
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

run: deps
	@$(MAKE) --no-print-directory $(BUILD)/cellard
	@mkdir -p data
	exec ./$(BUILD)/cellard --listen 127.0.0.1:8080 --data-dir ./data

cluster: deps
	@$(MAKE) --no-print-directory $(BUILD)/cellard
	exec scripts/cluster ./$(BUILD)/cellard

unit: all
	@tests/run-unit $(UNIT_BINS)

integration: all
	@CELLARD=$(CURDIR)/$(BUILD)/cellard tests/run-integration

test: deps-test
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory suites

# Every test suite on the build in $(BUILD) (make test: release; make check:
# ASan+UBSan).
suites:
	@$(MAKE) --no-print-directory all
	@tests/run-unit $(UNIT_BINS)
	@tests/fuzz/replay $(BUILD)/fuzz
	@CELLARD=$(CURDIR)/$(BUILD)/cellard tests/run-integration
	@CELLARD=$(CURDIR)/$(BUILD)/cellard tests/cluster/run
	@CELLARD=$(CURDIR)/$(BUILD)/cellard tests/systemd/run
	@CELLARD=$(CURDIR)/$(BUILD)/cellard $(DEB_PYTHON) -m pytest -q -p no:cacheprovider tests/api
	@echo "API suite again, through node 3 of a three-node cluster"
	@CELLARD=$(CURDIR)/$(BUILD)/cellard PYTHON=$(DEB_PYTHON) tests/cluster/run-api
	@echo "API suite again, over HTTPS with a bearer token"
	@CELLAR_API_SECURE=1 CELLARD=$(CURDIR)/$(BUILD)/cellard $(DEB_PYTHON) -m pytest -q \
	    -p no:cacheprovider tests/api
	@$(MAKE) --no-print-directory -s $(NPM_TOOLS)
	@CELLARD=$(CURDIR)/$(BUILD)/cellard tests/client/run
	@$(MAKE) --no-print-directory -s $(BROWSER_NPM)
	@CELLARD=$(CURDIR)/$(BUILD)/cellard OUTPUT_DIR=$(CURDIR)/$(BUILD)/test-output/browser \
	    tests/browser/run

check: deps-test
	@$(MAKE) --no-print-directory suites BUILD=build-asan OPT=-O1 \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"

valgrind: deps-test
	@scripts/ensure-deps valgrind
	@$(MAKE) --no-print-directory all
	@CELLARD=$(CURDIR)/$(BUILD)/cellard tests/valgrind/run

lint: deps-lint
	@echo "clang-format"; clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')
	@echo "cppcheck"; cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	    --std=c11 --inline-suppr -I. -D__GNUC__ $$(git ls-files '*.c')
	@echo "banned calls"; ! git grep -nE '\b(strcpy|strcat|sprintf|vsprintf|strtok|gets|atoi|atol)\s*\(' \
	    -- '*.c' '*.h'
	@$(MAKE) --no-print-directory -s $(NPM_TOOLS)
	@echo "openapi.yaml"; REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
	    $(NODE_DIR)/node_modules/.bin/redocly lint --config redocly.yaml \
	    --format stylish openapi.yaml
	@$(MAKE) --no-print-directory -s lint-js

clean:
	rm -rf build build-asan build-fuzz

# --- Benchmark (bench/README.md) -------------------------------------------
.PHONY: bench deps-bench

deps-bench:
	@scripts/ensure-deps $(BENCH_DEBS)

$(BUILD)/bench/ceiling: bench/ceiling.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(shell pkg-config --libs libmicrohttpd 2>/dev/null) -lpthread

bench: deps-bench
	@$(MAKE) --no-print-directory $(BUILD)/cellard $(BUILD)/bench/ceiling
	@$(DEB_PYTHON) bench/run --cellard $(BUILD)/cellard --ceiling $(BUILD)/bench/ceiling \
	    --json $(BUILD)/bench/results.json

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/obj/tests/unit/%.d)

# --- Installation ---------------------------------------------------------
# Debian-style: `make install PREFIX=/usr DESTDIR=debian/tmp` for a package,
# plain `sudo make install` for /usr/local. The units are installed with
# ExecStart= pointing at $(BINDIR)/cellard; they read their config from
# %E/cellar (/etc/cellar), hence SYSCONFDIR stays /etc whatever the PREFIX.
# An existing config file is kept. Afterwards (not done here):
# systemd-sysusers; systemd-tmpfiles --create; systemctl daemon-reload.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
UNITS := $(wildcard systemd/*.service systemd/*.socket systemd/*.target)

.PHONY: install uninstall

install: $(BUILD)/cellard
	install -D -m 0755 $(BUILD)/cellard $(DESTDIR)$(BINDIR)/cellard
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	for u in $(UNITS); do \
	    sed 's#^ExecStart=/usr/bin/cellard #ExecStart=$(BINDIR)/cellard #' $$u \
	        > $(DESTDIR)$(UNITDIR)/$${u#systemd/} && \
	    chmod 0644 $(DESTDIR)$(UNITDIR)/$${u#systemd/} || exit 1; \
	done
	install -D -m 0644 systemd/cellar.sysusers $(DESTDIR)$(SYSUSERSDIR)/cellar.conf
	install -D -m 0644 systemd/cellar.tmpfiles $(DESTDIR)$(TMPFILESDIR)/cellar.conf
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/cellar/cellard.conf ]; then \
	    echo "kept the existing $(DESTDIR)$(SYSCONFDIR)/cellar/cellard.conf"; \
	else \
	    echo "install -D -m 0644 service/cellard.conf $(DESTDIR)$(SYSCONFDIR)/cellar/cellard.conf"; \
	    install -D -m 0644 service/cellard.conf $(DESTDIR)$(SYSCONFDIR)/cellar/cellard.conf; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/cellard $(DESTDIR)$(SYSUSERSDIR)/cellar.conf \
	    $(DESTDIR)$(TMPFILESDIR)/cellar.conf \
	    $(patsubst systemd/%,$(DESTDIR)$(UNITDIR)/%,$(UNITS))

include tests/fuzz/fuzz.mk

# --- JavaScript lint ------------------------------------------------------
# eslint's recommended rules over the console's JavaScript and the browser
# tests (tests/browser/eslint.config.mjs). eslint is pinned by
# tests/browser/package-lock.json and installed with the browser tests'
# tools; the config is copied next to it so that its imports resolve there.
.PHONY: lint-js

lint-js:
	@$(MAKE) --no-print-directory -s $(BROWSER_NPM)
	@cp tests/browser/eslint.config.mjs build/npm/browser/
	@echo "eslint"; build/npm/browser/node_modules/.bin/eslint \
	    --config build/npm/browser/eslint.config.mjs console/*.js tests/browser/*.mjs
