# ==== make diff OLD=path NEW=path: the same ~30,000 generated requests to two
# binaries, answers compared byte for byte (tests/diff/README.md); exits
# non-zero on a difference tests/diff/allow.txt does not list.  Not part of
# make test.  DIFF_ARGS passes more options (--seed, --count, --flags ...).
OLD ?= $(B)/attnd
NEW ?= $(B)/attnd
DIFF_ARGS ?=

.PHONY: diff
diff: | deps
	OMP_WAIT_POLICY=PASSIVE $(PYTHON) tests/diff/run.py $(OLD) $(NEW) $(DIFF_ARGS)

# ==== make b64-bench: api/b64.c against libsodium's base64, MB/s each way
# (bench/b64_bench.c); libsodium only here and in the unit tests.
.PHONY: b64-bench
$(B)/bench/b64_bench: bench/b64_bench.c $(B)/obj/api/b64.o | test-deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -lsodium -o $@

b64-bench: $(B)/bench/b64_bench
	./$(B)/bench/b64_bench
