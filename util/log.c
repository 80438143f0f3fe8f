#include "util/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

/* One record is at most this long; longer messages are cut. */
#define LOG_RECORD_MAX (16 * 1024)

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER; /* guards writes to log_out */
static enum log_format log_fmt = LOG_PLAIN;
static enum log_level log_min = LOG_INFO;
static FILE *log_out;

static const char *level_names[] = { "debug", "info", "warn", "error", "off" };

void log_setup(enum log_format fmt, enum log_level min, FILE *out)
{
	pthread_mutex_lock(&log_lock);
	log_fmt = fmt;
	log_min = min;
	log_out = out;
	pthread_mutex_unlock(&log_lock);
}

int log_level_parse(enum log_level *out, const char *s)
{
	for (int i = 0; i <= LOG_OFF; i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return err_set(ERR_INVALID, "unknown log level \"%s\" (debug, info, warn, error, off)", s);
}

int log_enabled(enum log_level lvl)
{
	return lvl >= log_min && lvl < LOG_OFF;
}

static void emit(buf *b)
{
	FILE *out;

	/* a record cut by the cap still ends with a newline */
	if (b->len == 0 || b->data[b->len - 1] != '\n') {
		if (buf_append_byte(b, '\n')) {
			if (b->len)
				b->data[b->len - 1] = '\n';
		}
	}
	pthread_mutex_lock(&log_lock);
	out = log_out ? log_out : stderr;
	fwrite(buf_cstr(b), 1, b->len, out);
	fflush(out);
	pthread_mutex_unlock(&log_lock);
}

static void record(enum log_level lvl, const char *msg, va_list fields)
{
	buf b = BUF_INIT(LOG_RECORD_MAX);
	char ts[40];
	const char *k, *v;

	clock_wall_rfc3339(ts, sizeof(ts), 1);
	if (log_fmt == LOG_JSON) {
		buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts, level_names[lvl]);
		str_json_quote(&b, msg);
		while ((k = va_arg(fields, const char *)) != NULL) {
			v = va_arg(fields, const char *);
			buf_append_byte(&b, ',');
			str_json_quote(&b, k);
			buf_append_byte(&b, ':');
			str_json_quote(&b, v ? v : "");
		}
		buf_append_str(&b, "}\n");
	} else {
		buf_printf(&b, "%s %s", lvl >= LOG_WARN ? level_names[lvl] : "", msg);
		if (lvl < LOG_WARN)
			buf_consume(&b, 1); /* drop the leading space */
		while ((k = va_arg(fields, const char *)) != NULL) {
			v = va_arg(fields, const char *);
			buf_printf(&b, " %s=%s", k, v ? v : "");
		}
		buf_append_byte(&b, '\n');
	}
	emit(&b);
	buf_free(&b);
}

void log_kv(enum log_level lvl, const char *msg, ...)
{
	va_list ap;

	if (!log_enabled(lvl))
		return;
	va_start(ap, msg);
	record(lvl, msg, ap);
	va_end(ap);
}

static void record_noargs(enum log_level lvl, const char *msg, ...)
{
	va_list ap;

	va_start(ap, msg);
	record(lvl, msg, ap);
	va_end(ap);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	buf m = BUF_INIT(LOG_RECORD_MAX);
	va_list ap;

	if (!log_enabled(lvl))
		return;
	va_start(ap, fmt);
	buf_vprintf(&m, fmt, ap);
	va_end(ap);
	record_noargs(lvl, buf_cstr(&m), (const char *)NULL);
	buf_free(&m);
}
