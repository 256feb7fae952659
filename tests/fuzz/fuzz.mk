# Fuzzing (tests/fuzz/README.md), included by the Makefile.
#
#   make fuzz                 every target for FUZZ_SECONDS each, with clang and
#                             libFuzzer (ASan+UBSan), in build-fuzz/
#   make fuzz FUZZ_TARGETS="cursor body" FUZZ_SECONDS=600
#   make fuzz-replay          the committed corpora and regressions through the
#                             targets built with $(CC) (part of `make test`)

FUZZ_TARGETS ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 30
FUZZ_ARGS ?=  # more libFuzzer options, e.g. -jobs=2
FUZZ_BUILD := build-fuzz
FUZZ_CC ?= clang-14
# clang and libFuzzer (libclang-rt-14-dev holds libclang_rt.fuzzer and the
# sanitizer runtimes), with what the library links against.
FUZZ_DEBS := $(BUILD_DEBS) clang-14 libclang-rt-14-dev
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=gnu11 -O1 -g -D_GNU_SOURCE -I. -Wall -Wextra -Wno-unused-parameter \
               -MMD -MP $(FUZZ_SAN) -fsanitize=fuzzer-no-link \
               $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/obj/%.o) $(FUZZ_BUILD)/obj/api/openapi_blob.o
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

# The same targets with replay.c's main instead of libFuzzer's.
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAY_BINS := $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=$(BUILD)/fuzz/%)

.PHONY: fuzz fuzz-build fuzz-replay deps-fuzz

all: $(FUZZ_REPLAY_BINS)

$(BUILD)/fuzz/%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/obj/tests/fuzz/harness.o \
                 $(BUILD)/obj/tests/fuzz/replay.o $(BUILD)/libcellar.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

fuzz-replay: $(FUZZ_REPLAY_BINS)
	@tests/fuzz/replay $(BUILD)/fuzz

deps-fuzz:
	@scripts/ensure-deps $(FUZZ_DEBS)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/obj/api/openapi_blob.o: api/openapi_blob.S openapi.yaml
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -I. -c $< -o $@

$(FUZZ_BUILD)/libcellar.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/obj/tests/fuzz/harness.o \
                      $(FUZZ_BUILD)/libcellar.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz-build: deps-fuzz
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

# Each target runs FUZZ_SECONDS over its committed seeds; what it finds
# goes to build-fuzz/corpus/<target> (not committed: merge the useful part
# with tests/fuzz/merge), crashes to build-fuzz/crashes/<target>/.
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/crashes/$$t || exit 1; \
	    dict=; [ -f tests/fuzz/dict/$$t.dict ] && dict=-dict=tests/fuzz/dict/$$t.dict; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
	    $(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	        -print_final_stats=1 $$dict -artifact_prefix=$(FUZZ_BUILD)/crashes/$$t/ \
	        $(FUZZ_ARGS) $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t \
	        2>$(FUZZ_BUILD)/$$t.log || { tail -n 40 $(FUZZ_BUILD)/$$t.log; \
	        echo "fuzz: $$t FAILED: the input is in $(FUZZ_BUILD)/crashes/$$t/"; exit 1; }; \
	    grep -E '^#[0-9]+' $(FUZZ_BUILD)/$$t.log | tail -n 1; \
	done

-include $(FUZZ_LIB_OBJS:.o=.d) $(FUZZ_BUILD)/obj/tests/fuzz/*.d \
         $(BUILD)/obj/tests/fuzz/*.d
