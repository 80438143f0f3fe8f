#include "kubesim/logs_file.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

/* containerd cuts log lines at 16 KiB (its default max_container_log_line_size) */
#define LINE_MAX_BYTES (16 * 1024)
#define READ_CHUNK (64 * 1024)

struct ks_log_sink {
	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t cond;
	int refs;
	int fd;
	int done;
	long long size;     /* bytes of whole records in the file */
	buf partial[3];     /* [1] stdout, [2] stderr: text waiting for its newline */
};

int ks_log_sink_new(ks_log_sink **out, const char *path)
{
	ks_log_sink *s = calloc(1, sizeof *s);

	*out = NULL;
	if (!s)
		return err_set(ERR_NOMEM, "out of memory");
	s->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
	if (s->fd < 0) {
		int e = errno;
		free(s);
		return err_set(ERR_FAIL, "create log %s: %s", path, strerror(e));
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->refs = 1;
	for (int i = 0; i < 3; i++)
		buf_init(&s->partial[i], LINE_MAX_BYTES);
	*out = s;
	return 0;
}

void ks_log_sink_ref(ks_log_sink *s)
{
	pthread_mutex_lock(&s->mu);
	s->refs++;
	pthread_mutex_unlock(&s->mu);
}

void ks_log_sink_unref(ks_log_sink *s)
{
	int last;

	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	last = --s->refs == 0;
	pthread_mutex_unlock(&s->mu);
	if (!last)
		return;
	close(s->fd);
	for (int i = 0; i < 3; i++)
		buf_free(&s->partial[i]);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cond);
	free(s);
}

static void stamp(char out[64])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

/* Append records to b for line pieces of one stream; caller holds mu. */
static void add_record(buf *b, const char *ts, int stream, char tag, const char *p, size_t n)
{
	buf_append_str(b, ts);
	buf_append_str(b, stream == 2 ? " stderr " : " stdout ");
	buf_append_byte(b, (unsigned char)tag);
	buf_append_byte(b, ' ');
	buf_append(b, p, n);
	buf_append_byte(b, '\n');
}

static void commit(ks_log_sink *s, buf *out)
{
	size_t off = 0;

	while (off < out->len) {
		ssize_t w = write(s->fd, out->data + off, out->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break; /* disk full: the log loses lines, the container goes on */
		off += (size_t)w;
	}
	s->size += (long long)off;
	pthread_cond_broadcast(&s->cond);
}

void ks_log_sink_write(ks_log_sink *s, int stream, const char *p, size_t n)
{
	buf out = BUF_INIT(SIZE_MAX);
	char ts[64];
	buf *part = &s->partial[stream == 2 ? 2 : 1];

	stamp(ts);
	pthread_mutex_lock(&s->mu);
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;
		if (part->len + take >= LINE_MAX_BYTES) {
			size_t fit = LINE_MAX_BYTES - part->len;
			buf_append(part, p, fit);
			add_record(&out, ts, stream, 'P', part->data, part->len);
			buf_reset(part);
			p += fit;
			n -= fit;
			continue;
		}
		if (!nl) {
			buf_append(part, p, n);
			break;
		}
		if (part->len) {
			buf_append(part, p, take);
			add_record(&out, ts, stream, 'F', part->data, part->len);
			buf_reset(part);
		} else {
			add_record(&out, ts, stream, 'F', p, take);
		}
		p += take + 1;
		n -= take + 1;
	}
	if (out.len)
		commit(s, &out);
	pthread_mutex_unlock(&s->mu);
	buf_free(&out);
}

void ks_log_sink_finish(ks_log_sink *s)
{
	buf out = BUF_INIT(SIZE_MAX);
	char ts[64];

	stamp(ts);
	pthread_mutex_lock(&s->mu);
	for (int i = 1; i <= 2; i++) {
		if (s->partial[i].len) {
			add_record(&out, ts, i, 'P', s->partial[i].data, s->partial[i].len);
			buf_reset(&s->partial[i]);
		}
	}
	if (out.len)
		commit(s, &out);
	s->done = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	buf_free(&out);
}

/* ---- reader ---- */

struct ks_log_reader {
	ks_log_sink *sink;
	int fd;
	long long pos;        /* file offset read so far */
	ks_log_params p;
	int64_t since_ms;     /* 0: no cut */
	int64_t left;         /* limit_bytes left, -1: none */
	buf raw;              /* bytes read, not yet a whole record */
	buf out;              /* formatted, not yet handed out */
	size_t out_off;
};

/* Offset where the last n records of the first `size` bytes start. */
static long long tail_offset(int fd, long long size, int64_t n)
{
	char b[READ_CHUNK];
	long long end = size;
	int64_t seen = 0;

	if (n <= 0)
		return size;
	while (end > 0) {
		long long start = end > READ_CHUNK ? end - READ_CHUNK : 0;
		ssize_t r = pread(fd, b, (size_t)(end - start), start);
		if (r <= 0)
			return 0;
		for (ssize_t i = r - 1; i >= 0; i--) {
			if (b[i] != '\n')
				continue;
			/* the newline ending the file's last record is not a start */
			if (start + i == size - 1)
				continue;
			if (++seen == n)
				return start + i + 1;
		}
		end = start;
	}
	return 0;
}

int ks_log_reader_new(ks_log_reader **out, ks_log_sink *s, const ks_log_params *p)
{
	ks_log_reader *r = calloc(1, sizeof *r);
	char path[64];
	long long size;

	*out = NULL;
	if (!r)
		return err_set(ERR_NOMEM, "out of memory");
	snprintf(path, sizeof path, "/proc/self/fd/%d", s->fd);
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		int e = errno;
		free(r);
		return err_set(ERR_FAIL, "open log: %s", strerror(e));
	}
	ks_log_sink_ref(s);
	r->sink = s;
	r->p = *p;
	r->p.uid = NULL;
	r->p.container = NULL;
	r->left = p->limit_bytes >= 0 ? p->limit_bytes : -1;
	if (p->since_seconds >= 0)
		r->since_ms = clock_wall_ms() - p->since_seconds * 1000;
	buf_init(&r->raw, SIZE_MAX);
	buf_init(&r->out, SIZE_MAX);
	pthread_mutex_lock(&s->mu);
	size = s->size;
	pthread_mutex_unlock(&s->mu);
	if (p->tail_lines >= 0)
		r->pos = tail_offset(r->fd, size, p->tail_lines);
	*out = r;
	return 0;
}

/* Timestamp as Go's time.RFC3339Nano prints it: trailing zeros of the
 * fraction dropped (kubectl logs --timestamps). */
static void put_ts(buf *b, const char *ts, size_t n)
{
	const char *dot = memchr(ts, '.', n);
	if (!dot || n < 2) {
		buf_append(b, ts, n);
		return;
	}
	size_t end = n - 1; /* the 'Z' */
	while (end > (size_t)(dot - ts) + 1 && ts[end - 1] == '0')
		end--;
	if (end == (size_t)(dot - ts) + 1)
		end = (size_t)(dot - ts);
	buf_append(b, ts, end);
	buf_append(b, "Z", 1);
}

/* Turn whole records of raw into output. */
static void format_records(ks_log_reader *r)
{
	size_t off = 0;

	for (;;) {
		char *line = r->raw.data + off;
		char *nl = memchr(line, '\n', r->raw.len - off);
		if (!nl)
			break;
		size_t len = (size_t)(nl - line);
		off += len + 1;
		/* TS STREAM TAG CONTENT */
		char *sp1 = memchr(line, ' ', len);
		if (!sp1)
			continue;
		char *sp2 = memchr(sp1 + 1, ' ', (size_t)(line + len - sp1 - 1));
		if (!sp2 || sp2 + 2 > line + len)
			continue;
		char tag = sp2[1];
		const char *content = sp2 + 3 <= line + len ? sp2 + 3 : line + len;
		size_t clen = (size_t)(line + len - content);
		if (r->since_ms) {
			char ts[48];
			int64_t ms;
			size_t tl = (size_t)(sp1 - line);
			if (tl < sizeof ts) {
				memcpy(ts, line, tl);
				ts[tl] = '\0';
				if (clock_parse_rfc3339(&ms, ts) == 0 && ms < r->since_ms)
					continue;
			}
		}
		if (r->p.timestamps) {
			put_ts(&r->out, line, (size_t)(sp1 - line));
			buf_append_byte(&r->out, ' ');
		}
		buf_append(&r->out, content, clen);
		if (tag == 'F')
			buf_append_byte(&r->out, '\n');
	}
	buf_consume(&r->raw, off);
}

long ks_log_read(ks_log_reader *r, char *dst, size_t max, int timeout_ms)
{
	int64_t deadline = clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);

	for (;;) {
		if (r->left == 0)
			return 0;
		if (r->out_off < r->out.len) {
			size_t n = r->out.len - r->out_off;
			if (n > max)
				n = max;
			if (r->left > 0 && (int64_t)n > r->left)
				n = (size_t)r->left;
			memcpy(dst, r->out.data + r->out_off, n);
			r->out_off += n;
			if (r->left > 0)
				r->left -= (int64_t)n;
			if (r->out_off == r->out.len) {
				buf_reset(&r->out);
				r->out_off = 0;
			}
			return (long)n;
		}
		long long size;
		int done;
		pthread_mutex_lock(&r->sink->mu);
		size = r->sink->size;
		done = r->sink->done;
		pthread_mutex_unlock(&r->sink->mu);
		if (r->pos < size) {
			size_t want = (size_t)(size - r->pos) > READ_CHUNK ? READ_CHUNK : (size_t)(size - r->pos);
			if (buf_reserve(&r->raw, want))
				return ERR_NOMEM;
			ssize_t n = pread(r->fd, r->raw.data + r->raw.len, want, r->pos);
			if (n < 0)
				return err_set(ERR_FAIL, "read log: %s", strerror(errno));
			r->raw.len += (size_t)n;
			r->raw.data[r->raw.len] = '\0';
			r->pos += n;
			format_records(r);
			continue;
		}
		if (!r->p.follow || done)
			return 0;
		/* wait for more, or for the container to stop */
		pthread_mutex_lock(&r->sink->mu);
		while (r->sink->size == r->pos && !r->sink->done) {
			int64_t left = deadline - clock_mono_ms();
			if (left <= 0) {
				pthread_mutex_unlock(&r->sink->mu);
				return err_set(ERR_TIMEOUT, "no log output within %d ms", timeout_ms);
			}
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += left / 1000;
			ts.tv_nsec += (left % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&r->sink->cond, &r->sink->mu, &ts);
		}
		pthread_mutex_unlock(&r->sink->mu);
	}
}

void ks_log_close(ks_log_reader *r)
{
	if (!r)
		return;
	close(r->fd);
	ks_log_sink_unref(r->sink);
	buf_free(&r->raw);
	buf_free(&r->out);
	free(r);
}
