/*
 * Durable commands (issue 8), measured against the real kubesim: 100
 * commands, each exec stream cut at a seeded random byte offset, must give
 * 100 correct exit codes and byte-identical output (SHA-256 of stdout and
 * stderr, and of everything streamed live), with no Job or pod left.
 *
 * How the cuts are made with kubesim's --faults (kubesim/faults.h): the
 * exec-cut=N action cuts one exec stream after N output bytes, and when
 * several rules fire for a request the last one wins. One rule without a
 * trigger cuts every exec at N0; seven more rules with seeded
 * probabilities (@p=) cut at other offsets, so each exec (the first of a
 * command and every reattach alike) is cut at one of eight offsets drawn
 * from the test's seed, in an order drawn from kubesim's --seed. Every
 * offset is below the smallest command output, so the first exec of every
 * command is cut (asserted: breaks >= 1 each), and later execs are cut too
 * while enough output remains. One more rule answers 503 to a few exec
 * upgrades (an API server restarting), which must be retried as well.
 *
 * The 100 commands run as two runs of 50 at once (two pods), each on its
 * own thread, to keep the program short on a loaded machine; every
 * assertion is made on the main thread afterwards.
 *
 * The figures (commands, cuts, reattaches, correct codes and hashes,
 * duration) are printed on stderr, which tests/run-tests.sh keeps in the
 * program's log. SANDBOX_DURABLE_SEED changes the seed (default 8).
 */
#include <openssl/sha.h>
#include <pthread.h>

#include "tests/integration/test_sandbox_env.h"

#define NCMD 100

TestSuite(sandbox_durable, .fini = sb_down, .timeout = 170);

static uint64_t rng;

static uint64_t next(void)
{
	/* splitmix64, as kubesim's */
	uint64_t z = (rng += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static int between(int lo, int hi)
{
	return lo + (int)(next() % (uint64_t)(hi - lo + 1));
}

static void sha_hex(char out[65], const void *p, size_t n)
{
	unsigned char md[32];

	SHA256(p, n, md);
	str_hex(out, md, 32);
}

typedef struct expect {
	int lines, pause_at, code;
	buf out, err;
} expect;

#define NRUN 2

typedef struct one_run {
	sandbox_request *req;
	sandbox_result *res;
	sb_record rec;
	sandbox_callbacks cb;
	const char *id;
	int rc;
	char err[512];
	buf want_out, want_err;   /* everything it should stream, in order */
} one_run;

static void *run_thread(void *arg)
{
	one_run *o = arg;

	o->rc = sandbox_run(&o->res, E.app, &E.cfg, o->req, o->id, &o->cb, NULL);
	if (o->rc)
		str_copy(o->err, sizeof(o->err), err_msg());
	return NULL;
}

Test(sandbox_durable, hundred_cut_commands_give_exact_codes_and_output)
{
	static expect ex[NCMD];
	static one_run runs[NRUN];
	char spec[2048], seed_arg[32];
	const char *env_seed = getenv("SANDBOX_DURABLE_SEED");
	uint64_t seed = env_seed && *env_seed ? strtoull(env_seed, NULL, 10) : 8;
	int cuts[8], off = 0;
	int codes_ok = 0, hashes_ok = 0, breaks = 0, reattaches = 0, max_reattach = 0;
	int64_t t0, run_ms = 0;
	pthread_t th[NRUN];
	const char *env_n = getenv("SANDBOX_DURABLE_COMMANDS");
	const char *nocut = getenv("SANDBOX_DURABLE_NOCUT");
	int ncmd = env_n && atoi(env_n) >= NRUN && atoi(env_n) <= NCMD ? atoi(env_n) : NCMD;
	int per = ncmd / NRUN;

	ncmd = per * NRUN;
	rng = seed;
	/* offsets 450..950: below every command's output (>= 28 lines of 36 bytes) */
	for (int i = 0; i < 8; i++)
		cuts[i] = between(450, 950);
	off += snprintf(spec + off, sizeof(spec) - (size_t)off, "exec */exec:exec-cut=%d", cuts[0]);
	for (int i = 1; i < 7; i++)
		off += snprintf(spec + off, sizeof(spec) - (size_t)off,
				";exec */exec:exec-cut=%d@p=0.35", cuts[i]);
	snprintf(spec + off, sizeof(spec) - (size_t)off, ";exec */exec:status=503,retry=1@p=0.03");
	snprintf(seed_arg, sizeof(seed_arg), "%llu", (unsigned long long)seed);
	const char *args[] = { "--faults", spec, "--seed", seed_arg, NULL };
	if (nocut && *nocut)
		args[0] = NULL;
	fprintf(stderr, "durable: seed %llu, kubesim --faults '%s'\n", (unsigned long long)seed, spec);

	sb_up(args);
	for (int k = 0; k < NRUN; k++) {
		one_run *o = &runs[k];

		memset(o, 0, sizeof(*o));
		o->id = k == 0 ? "durable-a" : "durable-b";
		o->req = sb_request((size_t)per);
		o->req->timeout_seconds = 160;
		o->req->collect.patch = 0;          /* the download exec would be cut too */
		o->req->collect.log_tail_lines = 0;
		buf_init(&o->want_out, 1 << 24);
		buf_init(&o->want_err, 1 << 24);
		o->cb = sb_callbacks(&o->rec);
	}
	for (int j = 0; j < ncmd; j++) {
		char script[512];
		expect *e = &ex[j];
		one_run *o = &runs[j / per];

		e->lines = between(28, 42);
		e->pause_at = j % 4 == 1 ? between(1, e->lines - 1) : -1; /* cut while it still runs */
		e->code = between(0, 255);
		buf_init(&e->out, 1 << 16);
		buf_init(&e->err, 1 << 16);
		for (int i = 0; i < e->lines; i++) {
			buf_printf(&e->out, "c%03d.%04d.abcdefghijklmnopqrstuvwxyz\n", j, i);
			if (i % 7 == 3)
				buf_printf(&e->err, "e%03d.%04d\n", j, i);
		}
		buf_append(&o->want_out, e->out.data, e->out.len);
		buf_append(&o->want_err, e->err.data, e->err.len);
		snprintf(script, sizeof(script),
			 "i=0; while [ $i -lt %d ]; do "
			 "printf 'c%%03d.%%04d.abcdefghijklmnopqrstuvwxyz\\n' %d $i; "
			 "if [ $((i %% 7)) = 3 ]; then printf 'e%%03d.%%04d\\n' %d $i >&2; fi; "
			 "i=$((i + 1)); if [ $i = %d ]; then sleep 0.2; fi; done; exit %d",
			 e->lines, j, j, e->pause_at, e->code);
		sb_shell(o->req, (size_t)(j % per), script);
		o->req->commands[j % per].continue_on_error = 1;
	}

	t0 = clock_mono_ms();
	for (int k = 0; k < NRUN; k++)
		cr_assert_eq(pthread_create(&th[k], NULL, run_thread, &runs[k]), 0);
	for (int k = 0; k < NRUN; k++)
		pthread_join(th[k], NULL);
	int64_t ms = clock_mono_ms() - t0;

	for (int j = 0; j < ncmd; j++) {
		const sandbox_command_result *c = &runs[j / per].res->commands[j % per];
		char want_out[65], want_err[65];

		sha_hex(want_out, ex[j].out.data, ex[j].out.len);
		sha_hex(want_err, ex[j].err.data, ex[j].err.len);
		breaks += c->breaks;
		reattaches += c->reattaches;
		if (c->reattaches > max_reattach)
			max_reattach = c->reattaches;
		if (c->outcome == SANDBOX_OUTCOME_EXITED && c->exit_code == ex[j].code)
			codes_ok++;
		if (strcmp(c->out.sha256, want_out) == 0 && strcmp(c->err.sha256, want_err) == 0 &&
		    c->out.bytes == ex[j].out.len && c->err.bytes == ex[j].err.len)
			hashes_ok++;
	}
	for (int k = 0; k < NRUN; k++)
		if (runs[k].res && runs[k].res->timings.run_ms > run_ms)
			run_ms = runs[k].res->timings.run_ms;
	fprintf(stderr, "durable: %d commands (%d runs of %d at once), %d stream breaks (exec cuts "
		"and refused upgrades), %d reattaches (at most %d for one command), %d/%d exit codes "
		"correct, %d/%d stdout+stderr hashes identical, %lld ms for the commands (%lld ms "
		"in all)\n", ncmd, NRUN, per, breaks, reattaches, max_reattach, codes_ok, ncmd,
		hashes_ok, ncmd, (long long)run_ms, (long long)ms);

	for (int k = 0; k < NRUN; k++) {
		one_run *o = &runs[k];

		cr_assert_eq(o->rc, 0, "%s", o->err);
		cr_assert_eq(o->res->phase, SANDBOX_SUCCEEDED, "%s: %s", o->res->reason, o->res->message);
		/* streamed live, in order, nothing lost or repeated */
		cr_assert_eq(o->rec.out[0].len, o->want_out.len);
		cr_assert(memcmp(o->rec.out[0].data, o->want_out.data, o->want_out.len) == 0,
			  "streamed stdout differs");
		cr_assert_str_eq(buf_cstr(&o->rec.out[1]), buf_cstr(&o->want_err));
		cr_assert_eq(o->rec.started, per);
		cr_assert_eq(o->rec.done, per);
	}
	for (int j = 0; j < ncmd; j++) {
		const sandbox_command_result *c = &runs[j / per].res->commands[j % per];

		cr_assert_eq(c->outcome, SANDBOX_OUTCOME_EXITED, "command %d: %s", j,
			     c->message ? c->message : "");
		cr_assert_eq(c->exit_code, ex[j].code, "command %d", j);
		if (args[0])
			cr_assert_geq(c->breaks, 1, "command %d was never cut", j);
		cr_assert_eq(c->out.len, ex[j].out.len, "command %d", j);
		cr_assert(memcmp(c->out.data, ex[j].out.data, ex[j].out.len) == 0, "command %d stdout", j);
		cr_assert_str_eq(c->err.data, buf_cstr(&ex[j].err), "command %d stderr", j);
	}
	cr_assert_eq(codes_ok, ncmd);
	cr_assert_eq(hashes_ok, ncmd);
	sb_assert_no_leak();

	for (int j = 0; j < ncmd; j++) {
		buf_free(&ex[j].out);
		buf_free(&ex[j].err);
	}
	for (int k = 0; k < NRUN; k++) {
		sandbox_result_free(runs[k].res);
		sandbox_request_free(runs[k].req);
		sb_record_free(&runs[k].rec);
		buf_free(&runs[k].want_out);
		buf_free(&runs[k].want_err);
	}
}
