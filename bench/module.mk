# bench: the C client of benchmarks 1 and 2 (bench/README.md), a small
# program on kube/exec.h. It is not part of `all`: bench/run.sh builds it
# with `make RELEASE=1 BUILD=build/rel bench-bins`, so that the benchmark
# never holds up everyone else's build. Links kube and util only.
BENCH_BINS :=
ifneq ($(wildcard kube/exec.h),)
BENCH_BINS += $(BUILD)/bench/exec_bench
endif

.PHONY: bench-bins
bench-bins: $(BENCH_BINS)

$(BUILD)/bench/exec_bench: $(call objs,bench/exec_bench.c) $(LIBKUBE) $(LIBUTIL)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
