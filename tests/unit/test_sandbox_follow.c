/* The follower's frame reader (sandbox/follow.c): output handed on as it
 * arrives, in any split, resumable at the offsets delivered, strict about
 * everything else. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sandbox/follow.h"
#include "util/buf.h"
#include "util/err.h"

typedef struct seen {
	buf s[2];
	int calls;
} seen;

static int on_data(void *arg, int stream, const char *p, size_t n)
{
	seen *v = arg;

	buf_append(&v->s[stream - 1], p, n);
	v->calls++;
	return 0;
}

static sandbox_follow *mk(seen *v)
{
	sandbox_follow *f = NULL;

	memset(v, 0, sizeof(*v));
	buf_init(&v->s[0], 1 << 16);
	buf_init(&v->s[1], 1 << 16);
	cr_assert_eq(sandbox_follow_new(&f, on_data, v), 0);
	return f;
}

static void done(sandbox_follow *f, seen *v)
{
	sandbox_follow_free(f);
	buf_free(&v->s[0]);
	buf_free(&v->s[1]);
}

static const char STREAM[] = "O 0 5\nhelloE 0 3\nerrO 5 7\n world\nX 3 12 3\n";

Test(sandbox_follow, whole_stream_in_every_split)
{
	for (size_t step = 1; step <= sizeof(STREAM); step++) {
		seen v;
		sandbox_follow *f = mk(&v);
		int code = -1;

		for (size_t o = 0; o < sizeof(STREAM) - 1; o += step) {
			size_t n = sizeof(STREAM) - 1 - o < step ? sizeof(STREAM) - 1 - o : step;
			cr_assert_eq(sandbox_follow_feed(f, STREAM + o, n), 0, "step %zu: %s", step, err_msg());
		}
		cr_assert(sandbox_follow_ended(f, &code));
		cr_assert_eq(code, 3);
		cr_assert_str_eq(buf_cstr(&v.s[0]), "hello world\n");
		cr_assert_str_eq(buf_cstr(&v.s[1]), "err");
		cr_assert_eq(sandbox_follow_offset(f, 1), 12);
		cr_assert_eq(sandbox_follow_offset(f, 2), 3);
		done(f, &v);
	}
}

Test(sandbox_follow, a_cut_mid_frame_resumes_from_what_was_delivered)
{
	seen v;
	sandbox_follow *f = mk(&v);
	int code;

	/* the first exec is cut inside the data of its second frame */
	cr_assert_eq(sandbox_follow_feed(f, "O 0 5\nhelloO 5 6\n wo", 20), 0);
	cr_assert_not(sandbox_follow_ended(f, NULL));
	cr_assert_eq(sandbox_follow_offset(f, 1), 8);
	sandbox_follow_restart(f);
	/* the reattached follower starts at 8 */
	cr_assert_eq(sandbox_follow_feed(f, "O 8 3\nrld", 9), 0);
	/* cut inside a header: the partial header is dropped on restart */
	cr_assert_eq(sandbox_follow_feed(f, "E 0 ", 4), 0);
	sandbox_follow_restart(f);
	cr_assert_eq(sandbox_follow_feed(f, "E 0 2\n!!X 0 11 2\n", 17), 0);
	cr_assert(sandbox_follow_ended(f, &code));
	cr_assert_eq(code, 0);
	cr_assert_str_eq(buf_cstr(&v.s[0]), "hello world");
	cr_assert_str_eq(buf_cstr(&v.s[1]), "!!");
	done(f, &v);
}

Test(sandbox_follow, duplicates_gaps_and_garbage_are_refused)
{
	const char *bad[] = {
		"O 0 5\nhelloO 0 5\nhello",   /* repeated: offset 0 again */
		"O 3 2\nab",                  /* a gap */
		"O 0 2\nabX 0 3 0\n",         /* totals disagree */
		"O 0 2\nabX 0 2 0\nmore",     /* bytes after the end */
		"X 256 0 0\n",                /* not an exit status */
		"Q 0 1\na",                   /* unknown frame */
		"O 00 1\na",                  /* leading zero */
		"O -1 1\na",                  /* sign */
		"O 0 99999999999999999999\n", /* too large */
		"O 0  1\na",                  /* two spaces */
		"O 0 1",                      /* (fine so far: no newline yet) */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		seen v;
		sandbox_follow *f = mk(&v);
		int rc = sandbox_follow_feed(f, bad[i], strlen(bad[i]));

		if (i == sizeof(bad) / sizeof(bad[0]) - 1)
			cr_assert_eq(rc, 0);
		else
			cr_assert_eq(rc, ERR_INVALID, "case %zu accepted", i);
		done(f, &v);
	}
	/* a header longer than the cap, without a newline */
	{
		seen v;
		sandbox_follow *f = mk(&v);
		char big[SANDBOX_FOLLOW_HEADER_MAX + 10];

		memset(big, '1', sizeof(big));
		cr_assert_eq(sandbox_follow_feed(f, big, sizeof(big)), ERR_INVALID);
		done(f, &v);
	}
	/* a NUL in a header */
	{
		seen v;
		sandbox_follow *f = mk(&v);

		cr_assert_eq(sandbox_follow_feed(f, "O 0\0 1\n", 7), ERR_INVALID);
		done(f, &v);
	}
}

Test(sandbox_follow, empty_command_and_zero_length_frames)
{
	seen v;
	sandbox_follow *f = mk(&v);
	int code;

	cr_assert_eq(sandbox_follow_feed(f, "O 0 0\nX 1 0 0\n", 14), 0);
	cr_assert(sandbox_follow_ended(f, &code));
	cr_assert_eq(code, 1);
	cr_assert_eq(v.calls, 0);
	done(f, &v);
}
