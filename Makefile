# Makefile — builds bin/activity and runs the project's checks.
#
#   make            build bin/activity
#   make demo       install what is missing, start the local stack, load a month, run, show tables
#   make test       install what is missing, start the stack, run unit (also under ASan/UBSan),
#                   the compose/Dockerfile check (tests/test_compose.sh) and integration tests
#   make dbt-test   the dbt project (dbt/) on fresh data through the processor: dbt build and
#                   source freshness, dbt from PyPI in .stack/dbtenv (tests/integration/test_dbt.sh;
#                   part of make test, as an integration test)
#   make bench      throughput / Redis cost / max RSS figures (prints, never fails on them)
#   make fuzz       libFuzzer + ASan/UBSan on framing, Avro decode, validation
#                   (FUZZ_SECONDS, default 60; part of make test)
#   make soak       the skew differential test over SEEDS random seeds (default 50)
#   make format     clang-format every C file
#   make clean      remove build output but the librdkafka build; distclean: everything

CC       ?= cc
# librdkafka is not Debian's (2.0.2) but the pinned 2.12 that scripts/librdkafka.sh builds
# into build/librdkafka: its pkg-config file comes first on PKG_CONFIG_PATH, its headers
# first on the include path, and binaries find its shared library through an rpath. The
# flags are expanded when a recipe runs (=, not :=), i.e. after $(RDKAFKA) was built.
RDKAFKA_PREFIX := $(CURDIR)/build/librdkafka
RDKAFKA  := $(RDKAFKA_PREFIX)/.pinned
PKG_CONFIG_RDK := PKG_CONFIG_PATH=$(RDKAFKA_PREFIX)/lib/pkgconfig$(if $(PKG_CONFIG_PATH),:$(PKG_CONFIG_PATH)) pkg-config
PKGS     := rdkafka avro-c libpq hiredis jansson libcurl libcrypto libmicrohttpd
# -isystem: still ahead of /usr/include (Debian's librdkafka-dev may be installed for kcat),
# and rdkafka.h's own -Wextra warnings are not ours to fail on.
PKG_CFLAGS = $(subst -I$(RDKAFKA_PREFIX)/include,-isystem $(RDKAFKA_PREFIX)/include,$(shell $(PKG_CONFIG_RDK) --cflags $(PKGS)))
PKG_LIBS   = $(shell $(PKG_CONFIG_RDK) --libs $(PKGS)) -Wl,-rpath,$(RDKAFKA_PREFIX)/lib
WARN     := -Wall -Wextra -Werror
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -I. -Ibuild/gen $(PKG_CFLAGS)
# Each object gets a .d file listing the headers it includes (read back at the end), so a
# header change rebuilds only the objects that include it. The test and bench binaries,
# compiled from several sources at once, relink whenever an object they use changes.
DEPFLAGS := -MMD -MP
LDLIBS   = $(PKG_LIBS) -lm

# Layers, bottom to top: lib/ (utilities every layer uses), consumers/ (Kafka, decoding),
# processors/ (validation, batching, Redis state), sinks/ (PostgreSQL), cmd/ (commands).
# An include may only point down (make check-layers, part of make test).
LAYERS   := lib consumers processors sinks cmd
LIB_SRC  := $(filter-out cmd/main.c,$(wildcard $(addsuffix /*.c,$(LAYERS))))
EMBED    := $(wildcard schemas/*.avsc) $(wildcard processors/*.lua) sinks/sql/schema.sql sinks/sql/views.sql sinks/sql/views_hll.sql sinks/sql/scd2.sql
GEN      := build/gen/embedded.c

OBJ      := $(patsubst %.c,build/obj/%.o,$(LIB_SRC) $(GEN))
ASAN_OBJ := $(patsubst %.c,build/asan/%.o,$(LIB_SRC) $(GEN))
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

UNIT_SRC := $(wildcard tests/unit/test_*.c)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)
# The schema registry tests serve HTTP in-process (tests/unit/test_schema_registry.c).
MHD_LIBS := $(shell pkg-config --libs libmicrohttpd 2>/dev/null)

.PHONY: all deps demo test dbt-test unit unit-asan integration bench format clean distclean stack-up stack-down fuzz soak check-layers

all: bin/activity

# Built once, then cached: the script exits at once while the pin is unchanged.
$(RDKAFKA): scripts/librdkafka.sh
	scripts/librdkafka.sh

$(GEN): scripts/embed.sh $(EMBED)
	@mkdir -p $(dir $@)
	scripts/embed.sh $@ $(EMBED)

build/obj/%.o: %.c | $(GEN) $(RDKAFKA)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -c $< -o $@

build/asan/%.o: %.c | $(GEN) $(RDKAFKA)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ASAN_FLAGS) $(DEPFLAGS) -c $< -o $@

bin/activity: build/obj/cmd/main.o $(OBJ)
	@mkdir -p bin
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

build/unit_tests: $(UNIT_SRC) tests/unit/unit.h $(OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $(UNIT_SRC) $(OBJ) $(LDLIBS) $(CHECK_LIBS) $(MHD_LIBS)

build/unit_tests_asan: $(UNIT_SRC) tests/unit/unit.h $(ASAN_OBJ)
	$(CC) $(ALL_CFLAGS) $(ASAN_FLAGS) -o $@ $(UNIT_SRC) $(ASAN_OBJ) $(LDLIBS) $(CHECK_LIBS) $(MHD_LIBS)

deps:
	scripts/deps.sh

unit: build/unit_tests
	CK_FORK=yes CK_DEFAULT_TIMEOUT=60 build/unit_tests

# check forks each test; ASan's leak checker is kept on. check's default 4 s
# per test is too short for the sanitized CSV refill test on a loaded 2-core
# machine (seen timing out there, never failing).
unit-asan: build/unit_tests_asan
	ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=tests/unit/lsan.supp \
		UBSAN_OPTIONS=print_stacktrace=1 CK_FORK=yes CK_DEFAULT_TIMEOUT=120 build/unit_tests_asan

integration: bin/activity build/hll_tool
	tests/integration/run_all.sh

check-layers:
	scripts/check_layers.sh $(LAYERS)

test:
	scripts/deps.sh
	$(MAKE) check-layers
	$(MAKE) all build/unit_tests build/unit_tests_asan
	$(MAKE) unit unit-asan
	tests/test_compose.sh
	$(MAKE) fuzz
	tests/integration/run_all.sh

# run_all.sh starts the stack if it is down (and stops it again after).
dbt-test:
	scripts/deps.sh
	$(MAKE) all
	ONLY=test_dbt tests/integration/run_all.sh

demo:
	scripts/deps.sh
	$(MAKE) all
	scripts/demo.sh

bench:
	scripts/deps.sh
	$(MAKE) all build/consume_decode build/activity-unfenced
	scripts/bench.sh

SEEDS ?= 50
soak:
	scripts/deps.sh
	$(MAKE) all
	scripts/soak.sh $(SEEDS)

stack-up:
	scripts/stack.sh up

stack-down:
	scripts/stack.sh down

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# Keeps the librdkafka build (a minute to redo); distclean removes it too.
clean:
	rm -rf bin $$(find build -mindepth 1 -maxdepth 1 ! -name librdkafka ! -name .librdkafka.lock 2>/dev/null)

distclean:
	rm -rf build bin

build/consume_decode: tests/bench/consume_decode.c $(OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(OBJ) $(LDLIBS)

# lib/hll against the real extension and Redis (tests/integration/test_hll_format.sh).
build/hll_tool: tests/integration/hll_tool.c build/obj/lib/hll.o
	$(CC) $(ALL_CFLAGS) -o $@ $^ -lhiredis -lm

# Fuzzing (libFuzzer needs clang): the library objects built with ASan/UBSan
# and fuzzer coverage, the target linked with libFuzzer's main.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -I. -Ibuild/gen $(PKG_CFLAGS) -O1 -g \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_OBJ := $(patsubst %.c,build/fuzz/%.o,$(LIB_SRC) $(GEN))

build/fuzz/%.o: %.c | $(GEN) $(RDKAFKA)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) $(DEPFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

build/fuzz_decode: tests/fuzz/fuzz_decode.c $(FUZZ_OBJ)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz: build/fuzz_decode
	tests/fuzz/run.sh $(FUZZ_SECONDS)

# The same binary with the fence check and fence update switched off (ACTIVITY_UNFENCED in
# processors/state_apply.c, which apply.lua obeys): `make bench` runs both over the same
# topic to price the fencing.
build/unfenced/processors/state_apply.o: processors/state_apply.c | $(GEN) $(RDKAFKA)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -DACTIVITY_UNFENCED -c $< -o $@

build/activity-unfenced: build/obj/cmd/main.o $(filter-out build/obj/processors/state_apply.o,$(OBJ)) build/unfenced/processors/state_apply.o
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

# The header dependencies -MMD wrote (none before the first build).
-include $(shell find build/obj build/asan build/fuzz build/unfenced -name '*.d' 2>/dev/null)
