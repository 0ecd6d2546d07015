# Portcullis: one non-recursive Makefile. Variants build out of tree under build/.
#   make                 three daemons and libcommon.a (build/debug)
#   make SAN=asan        AddressSanitizer + UndefinedBehaviorSanitizer (build/debug-asan)
#   make test            unit tests, then end-to-end tests against a real cluster on loopback
#   make unit            unit tests only
#   make e2e             end-to-end tests only
#   make check           test, then the same under the sanitizers (what CI runs)

CC        ?= gcc
BUILD     ?= debug
SAN       ?=
WERROR    ?= 1
OUT       ?= build/$(BUILD)$(if $(SAN),-$(SAN))

PKGS       := libh2o-evloop openssl jansson yaml-0.1 hiredis libcurl cjose
DEP_CFLAGS := $(patsubst -I%,-isystem %,$(shell pkg-config --cflags $(PKGS))) -DH2O_USE_LIBUV=0
DEP_LIBS   := $(shell pkg-config --libs $(PKGS)) -lz -lpthread -lm

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wpointer-arith -Wvla -Wimplicit-fallthrough -Wno-unused-parameter \
        -Wno-missing-field-initializers \
        $(if $(findstring clang,$(CC)),,-Wjump-misses-init) $(if $(filter 1,$(WERROR)),-Werror)
OPT_debug   := -O1 -g3
OPT_release := -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong
SAN_asan    := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

CPPFLAGS += -I. -D_GNU_SOURCE
CFLAGS   += -std=gnu11 $(WARN) $(OPT_$(BUILD)) $(SAN_$(SAN)) $(DEP_CFLAGS) -MMD -MP
LDFLAGS  += $(SAN_$(SAN))

objs = $(patsubst %.c,$(OUT)/obj/%.o,$(1))
DAEMONS := authenticate authorize databroker
BINS    := $(foreach d,$(DAEMONS),$(OUT)/bin/portcullis-$(d))

.PHONY: all unit e2e test test-asan check clean bench-smoke
all: $(BINS)

$(OUT)/lib/libcommon.a: $(call objs,$(wildcard common/*.c))
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

define daemon_rules
$(OUT)/lib/lib$(1).a: $(call objs,$(filter-out $(1)/main.c,$(wildcard $(1)/*.c)))
	@mkdir -p $$(@D)
	$$(AR) rcs $$@ $$^
$(OUT)/bin/portcullis-$(1): $(OUT)/obj/$(1)/main.o $(OUT)/lib/lib$(1).a $(OUT)/lib/libcommon.a
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(DEP_LIBS)
endef
$(foreach d,$(DAEMONS),$(eval $(call daemon_rules,$(d))))

$(OUT)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# unit tests: tests/unit/<dir>/<file>.c, one cmocka binary each, linked with the archive of
# <dir> (none for common) and libcommon.a
UNIT_SRCS := $(wildcard tests/unit/*/*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRCS))

define unit_rules
$(OUT)/tests/$(1)/%: tests/unit/$(1)/%.c $(if $(filter common,$(1)),,$(OUT)/lib/lib$(1).a) \
		$(OUT)/lib/libcommon.a
	@mkdir -p $$(@D)
	$$(CC) $$(CPPFLAGS) -DPORTCULLIS_SOURCE_DIR='"$$(CURDIR)"' $$(CFLAGS) $$(LDFLAGS) -o $$@ $$< \
		$(if $(filter common,$(1)),,$(OUT)/lib/lib$(1).a) $(OUT)/lib/libcommon.a \
		$$(DEP_LIBS) -lcmocka
endef
$(foreach d,common $(DAEMONS),$(eval $(call unit_rules,$(d))))

unit: $(UNIT_BINS)
	@tests/unit/run.sh $(UNIT_BINS)

e2e: $(BINS)
	PORTCULLIS_BIN=$(CURDIR)/$(OUT)/bin tests/e2e/run.sh

test: unit e2e

# the whole suite again under AddressSanitizer and UndefinedBehaviorSanitizer
test-asan:
	$(MAKE) SAN=asan test

# everything CI runs: the normal build's tests, then the sanitizer build's
check:
	$(MAKE) test
	$(MAKE) test-asan

# the benchmark (bench/README.md): its own tools, never part of `make test`
BENCH_BINS  := $(OUT)/bench/b1_server $(OUT)/bench/mint_sessions $(OUT)/bench/cold_floor
e2e: $(OUT)/bench/mint_sessions # the cold-read tests mint sessions with it
BENCH_BUILD ?= release
.PHONY: bench bench-tools

$(OUT)/bench/b1_server: $(OUT)/obj/bench/b1_server.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS)
$(OUT)/bench/mint_sessions: $(OUT)/obj/bench/mint_sessions.o $(OUT)/lib/libcommon.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS)
$(OUT)/bench/cold_floor: $(OUT)/obj/bench/cold_floor.o $(OUT)/lib/libauthorize.a \
		$(OUT)/lib/libcommon.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS)

bench-tools: $(BINS) $(BENCH_BINS)

# the full run, on an optimised build of its own (build/release unless BENCH_BUILD says)
bench:
	$(MAKE) BUILD=$(BENCH_BUILD) SAN= bench-tools
	python3 bench/bench.py --out-dir build/$(BENCH_BUILD)

# CI: every scenario for 1 s on the current build; fails when one breaks
bench-smoke: bench-tools
	python3 bench/bench.py --out-dir $(OUT) --smoke

clean:
	rm -rf build

-include $(shell find $(OUT) -name '*.d' 2>/dev/null)
