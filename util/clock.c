#include "util/clock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/err.h"

int64_t clock_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t clock_mono_ms(void)
{
	return clock_mono_ns() / 1000000;
}

int64_t clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *clock_format_rfc3339(char *out, size_t size, int64_t wall_ms, int millis)
{
	struct tm tm;
	time_t t;
	size_t n;

	if (wall_ms == 0)
		wall_ms = clock_wall_ms();
	t = (time_t)(wall_ms / 1000);
	gmtime_r(&t, &tm);
	n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
	if (millis)
		snprintf(out + n, size - n, ".%03dZ", (int)(wall_ms % 1000));
	else
		snprintf(out + n, size - n, "Z");
	return out;
}

char *clock_wall_rfc3339(char *out, size_t size, int millis)
{
	return clock_format_rfc3339(out, size, 0, millis);
}

int clock_parse_rfc3339(int64_t *out_ms, const char *s)
{
	struct tm tm;
	const char *p;
	int64_t ms = 0, off = 0;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		goto bad;
	if (*p == '.') {
		int digits = 0;

		p++;
		while (*p >= '0' && *p <= '9') {
			if (digits < 3) {
				ms = ms * 10 + (*p - '0');
				digits++;
			}
			p++;
		}
		while (digits++ < 3)
			ms *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int hh, mm, sign = *p == '-' ? -1 : 1;

		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
			goto bad;
		off = sign * (hh * 3600 + mm * 60);
		p += 6;
	} else {
		goto bad;
	}
	if (*p)
		goto bad;
	t = timegm(&tm);
	*out_ms = ((int64_t)t - off) * 1000 + ms;
	return 0;
bad:
	return err_set(ERR_INVALID, "\"%s\" is not an RFC 3339 time", s);
}

void clock_sleep_ms(int64_t ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

int64_t clock_remaining_ms(int64_t deadline_ms)
{
	int64_t now;

	if (deadline_ms == 0)
		return INT64_MAX;
	now = clock_mono_ms();
	return deadline_ms > now ? deadline_ms - now : 0;
}
