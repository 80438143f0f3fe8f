# ci-fixer: one hand-written Makefile. Each layer lists its own sources in
# DIR/module.mk (explicit lists, included below), so the layers can grow
# without touching each other's lines.
#
#   make            all binaries into build/
#   make test       install missing deps, build, run every test (one summary line)
#   make check      the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make demo       the main job end to end on kubesim
#   make bench      benchmarks (bench/RESULTS.md)
#   make fuzz       libFuzzer targets, FUZZ_SECONDS each (default 60)
#   make soak       fault soak and crash cycles through serve (tests/soak)
#   make valgrind   unit and integration programs under valgrind memcheck
#   make tsan       ThreadSanitizer over the concurrency scenarios
#   make clean
#
# Switches: SANITIZE=address,undefined  RELEASE=1 (hardening, -O2, no -g)

BUILD    ?= build
CC       ?= cc
SANITIZE ?=
RELEASE  ?=
FUZZ_SECONDS ?= 60

PKGS := libcurl openssl libcjson yaml-0.1 libgit2 libmicrohttpd sqlite3
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CRITERION_LIBS := $(shell pkg-config --libs criterion 2>/dev/null || echo -lcriterion)

CFLAGS_BASE := -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -I. $(PKG_CFLAGS) -pthread -MMD -MP
ifeq ($(RELEASE),1)
OPTFLAGS := -O2 -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE -fstack-clash-protection
LDHARDEN := -pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack
else
OPTFLAGS := -O1 -g -fno-omit-frame-pointer
LDHARDEN :=
endif
ifneq ($(SANITIZE),)
SANFLAGS := -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
endif
CFLAGS  ?=
LDFLAGS ?=
ALL_CFLAGS  := $(CFLAGS_BASE) $(OPTFLAGS) $(SANFLAGS) $(CFLAGS)
ALL_LDFLAGS := -pthread $(SANFLAGS) $(LDHARDEN) $(LDFLAGS)
LIBS := $(PKG_LIBS) -lm

objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBUTIL    := $(BUILD)/lib/libutil.a
LIBKUBE    := $(BUILD)/lib/libkube.a
LIBSANDBOX := $(BUILD)/lib/libsandbox.a
LIBRUNNER  := $(BUILD)/lib/librunner.a
LIBKUBESIM := $(BUILD)/lib/libkubesim.a

# Each module.mk appends to these; a module.mk may also add binary rules
# (it can use objs, the LIB* variables and ALL_LIBS, defined above).
UTIL_SRCS :=
KUBE_SRCS :=
SANDBOX_SRCS :=
RUNNER_SRCS :=
KUBESIM_SRCS :=
BINS :=
FUZZ_TARGETS :=
# Link order: dependents before dependencies.
ALL_LIBS := $(LIBRUNNER) $(LIBSANDBOX) $(LIBKUBE) $(LIBKUBESIM) $(LIBUTIL)

include util/module.mk
-include kube/module.mk
-include sandbox/module.mk
-include runner/module.mk
-include kubesim/module.mk
# kubesim's node half (pods, exec, logs) lists its sources apart
-include kubesim/kubelet.mk
-include bench/module.mk

.PHONY: all test check demo bench fuzz fuzz-build fuzz-bins clean deps tests soak valgrind tsan
.DEFAULT_GOAL := all

all: $(BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

define static_lib
$(1): $(call objs,$(2))
	@mkdir -p $$(dir $$@)
	@rm -f $$@
	ar rcs $$@ $$^
endef
$(eval $(call static_lib,$(LIBUTIL),$(UTIL_SRCS)))
$(eval $(call static_lib,$(LIBKUBE),$(KUBE_SRCS)))
$(eval $(call static_lib,$(LIBSANDBOX),$(SANDBOX_SRCS)))
$(eval $(call static_lib,$(LIBRUNNER),$(RUNNER_SRCS)))
$(eval $(call static_lib,$(LIBKUBESIM),$(KUBESIM_SRCS)))

# Unit and integration test programs: every tests/{unit,integration}/test_*.c
# is one Criterion program linked against all layers.
UNIT_TEST_SRCS := $(wildcard tests/unit/test_*.c)
INTEG_TEST_SRCS := $(wildcard tests/integration/test_*.c)
TEST_HELPER_SRCS := $(wildcard tests/lib/*.c)
TEST_BINS := $(patsubst %.c,$(BUILD)/%,$(UNIT_TEST_SRCS) $(INTEG_TEST_SRCS))

$(BUILD)/tests/%: tests/%.c $(call objs,$(TEST_HELPER_SRCS)) $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MF $@.d $< $(call objs,$(TEST_HELPER_SRCS)) -o $@ $(ALL_LDFLAGS) $(ALL_LIBS) $(LIBS) $(CRITERION_LIBS)

tests: $(BINS) $(TEST_BINS)

deps:
	@scripts/install-deps.sh

JOBS := $(shell nproc 2>/dev/null || echo 2)

test: deps
	@echo "building (log: $(BUILD).make.log)"
	@$(MAKE) --no-print-directory -j$(JOBS) tests >$(BUILD).make.log 2>&1 || { cat $(BUILD).make.log; echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
	@BUILD=$(BUILD) tests/run-tests.sh

# Sanitizer reports abort the program, and tests/run-tests.sh counts any
# report in a program's log as a failure; LeakSanitizer skips only the
# library leaks listed in tests/lsan.supp (none today).
check: deps
	@LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	 UBSAN_OPTIONS=print_stacktrace=1 \
	 $(MAKE) --no-print-directory BUILD=build/san SANITIZE=address,undefined test

demo: deps
	@echo "make demo: building (log: $(BUILD).make.log)"
	@$(MAKE) --no-print-directory -j$(JOBS) all >$(BUILD).make.log 2>&1 || { cat $(BUILD).make.log; exit 1; }
	@BUILD=$(BUILD) scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory -j$(JOBS) RELEASE=1 BUILD=build/rel all
	@BUILD=build/rel bench/run.sh

valgrind: deps
	@$(MAKE) --no-print-directory -j$(JOBS) tests
	@BUILD=$(BUILD) tests/tools/valgrind.sh

tsan: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@BUILD=$(BUILD) tests/tools/tsan.sh

soak: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@BUILD=$(BUILD) tests/soak/run.sh

# Fuzz targets: tests/fuzz/fuzz_*.c, built with clang's libFuzzer.
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BUILD := build/fuzz
fuzz: deps fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) BUILD=$(FUZZ_BUILD) tests/fuzz/run.sh

# Build every fuzz target (also used by the short fuzz pass in make test).
fuzz-build:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang SANITIZE=address,undefined \
		CFLAGS="-fsanitize=fuzzer-no-link -DFUZZING" fuzz-bins

FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz-bin/%,$(FUZZ_SRCS))
fuzz-bins: $(FUZZ_BINS)
$(BUILD)/fuzz-bin/%: tests/fuzz/%.c $(ALL_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -MF $@.d $< -o $@ $(ALL_LDFLAGS) -fsanitize=fuzzer $(ALL_LIBS) $(LIBS)

clean:
	rm -rf build build.make.log build/san.make.log

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
