/*
 * follow: a small state machine over the follower's frames (see follow.h).
 * States: a header being read (bytes kept up to the cap), the data of an
 * O/E frame (bytes passed straight through), or ended (after X, nothing
 * more may come).
 */
#include "sandbox/follow.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

enum { ST_HEADER = 0, ST_DATA, ST_ENDED };

/* 2^53: more than any stream a pod can hold, and exact in a double */
#define NUM_MAX (UINT64_C(1) << 53)

struct sandbox_follow {
	sandbox_follow_data_fn fn;
	void *arg;
	int state;
	char line[SANDBOX_FOLLOW_HEADER_MAX];
	size_t line_len;
	int stream;          /* ST_DATA: 1 or 2 */
	uint64_t left;       /* ST_DATA: bytes of the frame still to come */
	uint64_t off[2];
	int code;
};

int sandbox_follow_new(sandbox_follow **out, sandbox_follow_data_fn fn, void *arg)
{
	sandbox_follow *f = calloc(1, sizeof(*f));

	*out = NULL;
	if (!f)
		return err_set(ERR_NOMEM, "out of memory");
	f->fn = fn;
	f->arg = arg;
	f->code = -1;
	*out = f;
	return 0;
}

void sandbox_follow_free(sandbox_follow *f)
{
	free(f);
}

void sandbox_follow_restart(sandbox_follow *f)
{
	if (f->state != ST_ENDED)
		f->state = ST_HEADER;
	f->line_len = 0;
	f->left = 0;
}

uint64_t sandbox_follow_offset(const sandbox_follow *f, int stream)
{
	return stream == 1 || stream == 2 ? f->off[stream - 1] : 0;
}

int sandbox_follow_ended(const sandbox_follow *f, int *code)
{
	if (f->state != ST_ENDED)
		return 0;
	if (code)
		*code = f->code;
	return 1;
}

/* A decimal number without sign, spaces or leading zeros, up to NUM_MAX;
 * *p moves past it. 0 or -1. */
static int num(uint64_t *out, const char **p)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > NUM_MAX)
			return -1;
	}
	*out = v;
	*p = s;
	return 0;
}

static int header(sandbox_follow *f)
{
	const char *p = f->line + 2;
	uint64_t a, b, c;

	if (f->line_len < 3 || f->line[1] != ' ')
		goto bad;
	switch (f->line[0]) {
	case 'O':
	case 'E': {
		int s = f->line[0] == 'O' ? 1 : 2;

		if (num(&a, &p) || *p++ != ' ' || num(&b, &p) || *p)
			goto bad;
		if (a != f->off[s - 1])
			return err_set(ERR_INVALID, "follower: %s frame at offset %llu, expected %llu",
				       s == 1 ? "stdout" : "stderr", (unsigned long long)a,
				       (unsigned long long)f->off[s - 1]);
		f->stream = s;
		f->left = b;
		f->state = b ? ST_DATA : ST_HEADER;
		return 0;
	}
	case 'X':
		if (num(&a, &p) || *p++ != ' ' || num(&b, &p) || *p++ != ' ' || num(&c, &p) || *p)
			goto bad;
		if (a > 255)
			goto bad;
		if (b != f->off[0] || c != f->off[1])
			return err_set(ERR_INVALID, "follower: the command wrote %llu/%llu bytes "
				       "(stdout/stderr), %llu/%llu arrived",
				       (unsigned long long)b, (unsigned long long)c,
				       (unsigned long long)f->off[0], (unsigned long long)f->off[1]);
		f->code = (int)a;
		f->state = ST_ENDED;
		return 0;
	default:
		break;
	}
bad:
	return err_set(ERR_INVALID, "follower: malformed frame header \"%.*s\"", (int)f->line_len,
		       f->line);
}

int sandbox_follow_feed(sandbox_follow *f, const void *data, size_t n)
{
	const char *p = data;
	int rc;

	while (n > 0) {
		switch (f->state) {
		case ST_ENDED:
			return err_set(ERR_INVALID, "follower: %zu bytes after the end frame", n);
		case ST_DATA: {
			size_t take = f->left < n ? (size_t)f->left : n;

			/* counted before the call: the bytes are delivered either way */
			f->off[f->stream - 1] += take;
			f->left -= take;
			if (f->left == 0)
				f->state = ST_HEADER;
			if (f->fn && (rc = f->fn(f->arg, f->stream, p, take)) != 0)
				return rc;
			p += take;
			n -= take;
			break;
		}
		default: {
			const char *nl = memchr(p, '\n', n);
			size_t take = nl ? (size_t)(nl - p) : n;

			if (f->line_len + take >= sizeof(f->line))
				return err_set(ERR_INVALID, "follower: frame header longer than %d bytes",
					       SANDBOX_FOLLOW_HEADER_MAX - 1);
			memcpy(f->line + f->line_len, p, take);
			f->line_len += take;
			p += take;
			n -= take;
			if (!nl)
				break;
			p++;
			n--;
			f->line[f->line_len] = '\0';
			if (memchr(f->line, '\0', f->line_len))
				return err_set(ERR_INVALID, "follower: NUL in a frame header");
			rc = header(f);
			f->line_len = 0;
			if (rc)
				return rc;
			break;
		}
		}
	}
	return 0;
}
