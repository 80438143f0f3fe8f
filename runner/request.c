/*
 * request: strict decoding and validation of run requests (see request.h).
 *
 * Flow: the raw body is checked before cJSON sees it (size cap, no raw NUL,
 * valid UTF-8, no raw control characters inside strings), and each "\u0000"
 * escape is overwritten with 0xFF bytes, which valid UTF-8 never contains, so
 * that a NUL smuggled through an escape is still seen after cJSON has turned
 * the string into a C string (cJSON would otherwise cut it silently). Then
 * the tree is walked with an explicit list of allowed fields per object, and
 * the decoded request goes through runner_request_validate(), which the CLI
 * uses too.
 */
#include "runner/request.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/err.h"
#include "util/str.h"

#define NUL_MARK 0xFF

/* ---- errors ---------------------------------------------------------- */

static int fail(runner_request_error *e, int status, const char *reason, const char *field,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail(runner_request_error *e, int status, const char *reason, const char *field,
		const char *fmt, ...)
{
	va_list ap;
	char msg[sizeof(e->message)];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	e->status = status;
	snprintf(e->reason, sizeof(e->reason), "%s", reason);
	snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
	if (field && *field) {
		if (snprintf(e->message, sizeof(e->message), "%s: %s", field, msg) >= (int)sizeof(e->message))
			e->message[sizeof(e->message) - 1] = '\0';
	} else {
		snprintf(e->message, sizeof(e->message), "%s", msg);
	}
	err_set(status == 413 ? ERR_TOOBIG : ERR_INVALID, "%s", e->message);
	return status == 413 ? ERR_TOOBIG : ERR_INVALID;
}

static void path_join(char *out, size_t size, const char *base, const char *name)
{
	int simple = *name != '\0';

	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.' && *p != '/')
			simple = 0;
	if (simple || strlen(name) > 64)
		snprintf(out, size, "%s%s%.64s", base, *base ? "." : "", name);
	else {
		/* a key that would make the path ambiguous is quoted */
		char q[80];
		size_t j = 0;

		for (const char *p = name; *p && j < sizeof(q) - 2; p++)
			q[j++] = (unsigned char)*p < 0x20 || (unsigned char)*p == NUL_MARK ? '?' : *p;
		q[j] = '\0';
		snprintf(out, size, "%s[\"%s\"]", base, q);
	}
}

static void path_index(char *out, size_t size, const char *base, size_t i)
{
	if (snprintf(out, size, "%s[%zu]", base, i) >= (int)size)
		out[size - 1] = '\0'; /* a cut path still names the field's start */
}

/* ---- raw body checks ------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len;
	unsigned cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

/* Check the raw bytes in place and mark "\u0000" escapes (see the top). */
static int raw_check(runner_request_error *e, unsigned char *p, size_t n)
{
	int in_str = 0;
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];

		if (c == 0)
			return fail(e, 400, "InvalidJSON", "", "the body contains a NUL byte at offset %zu", i);
		if (c >= 0x80) {
			size_t l = utf8_seq(p + i, n - i);

			if (!l)
				return fail(e, 400, "InvalidJSON", "",
					    "the body is not valid UTF-8 (byte 0x%02x at offset %zu)", c, i);
			i += l;
			continue;
		}
		if (!in_str) {
			if (c == '"')
				in_str = 1;
			i++;
			continue;
		}
		if (c < 0x20)
			return fail(e, 400, "InvalidJSON", "",
				    "invalid JSON: unescaped control character 0x%02x in a string at offset %zu", c, i);
		if (c == '"') {
			in_str = 0;
			i++;
		} else if (c == '\\') {
			if (i + 1 < n && p[i + 1] == 'u' && i + 5 < n && memcmp(p + i + 2, "0000", 4) == 0) {
				memset(p + i, NUL_MARK, 6);
				i += 6;
			} else {
				i += 2;
			}
		} else {
			i++;
		}
	}
	return 0;
}

/* ---- typed field readers --------------------------------------------- */

static int has_nul_mark(const char *s)
{
	return strchr(s, (char)NUL_MARK) != NULL;
}

static int get_string(runner_request_error *e, const char *path, const cJSON *v, char **out,
		      size_t max, int allow_empty)
{
	size_t len;

	if (!cJSON_IsString(v) || !v->valuestring)
		return fail(e, 400, "FieldValueInvalid", path, "must be a string");
	if (has_nul_mark(v->valuestring))
		return fail(e, 400, "FieldValueInvalid", path, "must not contain a NUL character");
	len = strlen(v->valuestring);
	if (!allow_empty && len == 0)
		return fail(e, 400, "FieldValueRequired", path, "must not be empty");
	if (len > max)
		return fail(e, 400, "FieldValueTooLong", path, "is %zu bytes long, at most %zu allowed", len, max);
	free(*out);
	*out = str_dup(v->valuestring);
	if (!*out)
		return err_set(ERR_NOMEM, "out of memory");
	return 0;
}

static int get_int(runner_request_error *e, const char *path, const cJSON *v, int *out, int min,
		   int max)
{
	double d;

	if (!cJSON_IsNumber(v))
		return fail(e, 400, "FieldValueInvalid", path, "must be an integer");
	d = v->valuedouble;
	if (!isfinite(d) || d != floor(d))
		return fail(e, 400, "FieldValueInvalid", path, "must be an integer");
	if (d < min || d > max)
		return fail(e, 400, "FieldValueInvalid", path, "must be between %d and %d", min, max);
	*out = (int)d;
	return 0;
}

static int get_bool(runner_request_error *e, const char *path, const cJSON *v, int *out)
{
	if (!cJSON_IsBool(v))
		return fail(e, 400, "FieldValueInvalid", path, "must be true or false");
	*out = cJSON_IsTrue(v);
	return 0;
}

/* Reject unknown and duplicate members of an object. allowed ends with NULL. */
static int check_members(runner_request_error *e, const char *path, const cJSON *obj,
			 const char *const *allowed, const char *what)
{
	char p[256];

	if (!cJSON_IsObject(obj))
		return fail(e, 400, "FieldValueInvalid", path, "must be an object");
	for (const cJSON *c = obj->child; c; c = c->next) {
		int known = 0;

		if (has_nul_mark(c->string)) {
			path_join(p, sizeof(p), path, c->string);
			return fail(e, 400, "FieldValueInvalid", p, "a field name must not contain a NUL character");
		}
		for (size_t i = 0; allowed && allowed[i]; i++)
			if (strcmp(c->string, allowed[i]) == 0)
				known = 1;
		path_join(p, sizeof(p), path, c->string);
		if (allowed && !known) {
			char list[200] = "";

			for (size_t i = 0; allowed[i]; i++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
					 allowed[i]);
			return fail(e, 400, "FieldUnknown", p, "unknown field \"%.64s\" in %s (known fields: %s)",
				    c->string, what, list);
		}
		for (const cJSON *d = obj->child; d != c; d = d->next)
			if (strcmp(d->string, c->string) == 0)
				return fail(e, 400, "FieldDuplicate", p, "duplicate field \"%.64s\"", c->string);
	}
	return 0;
}

static const cJSON *member(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	return v && !cJSON_IsNull(v) ? v : NULL;
}

/* A string map: object of strings with caps. Names are checked later. */
static int get_map(runner_request_error *e, const char *path, const cJSON *v, runner_map *out,
		   size_t max_entries, size_t max_bytes, size_t max_value)
{
	char p[256];
	size_t n = 0, bytes = 0;
	int rc;

	if ((rc = check_members(e, path, v, NULL, path)))
		return rc;
	for (const cJSON *c = v->child; c; c = c->next)
		n++;
	if (n > max_entries)
		return fail(e, 400, "FieldValueTooMany", path, "has %zu entries, at most %zu allowed", n,
			    max_entries);
	for (const cJSON *c = v->child; c; c = c->next) {
		char *val = NULL;

		path_join(p, sizeof(p), path, c->string);
		if ((rc = get_string(e, p, c, &val, max_value, 1)))
			return rc;
		bytes += strlen(c->string) + strlen(val);
		if (bytes > max_bytes) {
			free(val);
			return fail(e, 400, "FieldValueTooLong", path, "is larger than %zu bytes in all", max_bytes);
		}
		rc = runner_map_add(out, c->string, val);
		free(val);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- maps and builders ------------------------------------------------ */

int runner_map_add(runner_map *m, const char *key, const char *value)
{
	runner_kv *items = realloc(m->items, (m->n + 1) * sizeof(*items));

	if (!items)
		return err_set(ERR_NOMEM, "out of memory");
	m->items = items;
	items[m->n].key = str_dup(key);
	items[m->n].value = str_dup(value);
	if (!items[m->n].key || !items[m->n].value) {
		free(items[m->n].key);
		free(items[m->n].value);
		return err_set(ERR_NOMEM, "out of memory");
	}
	m->n++;
	return 0;
}

int runner_map_add_kv(runner_map *m, const char *kv)
{
	const char *eq = strchr(kv, '=');
	char *key;
	int rc;

	if (!eq || eq == kv)
		return err_set(ERR_INVALID, "\"%s\" is not KEY=VALUE", kv);
	key = str_ndup(kv, (size_t)(eq - kv));
	if (!key)
		return err_set(ERR_NOMEM, "out of memory");
	/* a later KEY=VALUE replaces an earlier one, as in a shell */
	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(m->items[i].key, key) == 0) {
			char *v = str_dup(eq + 1);

			free(key);
			if (!v)
				return err_set(ERR_NOMEM, "out of memory");
			free(m->items[i].value);
			m->items[i].value = v;
			return 0;
		}
	}
	rc = runner_map_add(m, key, eq + 1);
	free(key);
	return rc;
}

const char *runner_map_get(const runner_map *m, const char *key)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->items[i].key, key) == 0)
			return m->items[i].value;
	return NULL;
}

void runner_map_clear(runner_map *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->items[i].key);
		free(m->items[i].value);
	}
	free(m->items);
	m->items = NULL;
	m->n = 0;
}

runner_request *runner_request_new(void)
{
	runner_request *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->collect_patch = 1;
	r->log_tail_lines = RUNNER_DEFAULT_LOG_TAIL;
	return r;
}

static runner_command *command_append(runner_request *r)
{
	runner_command *c = realloc(r->commands, (r->ncommands + 1) * sizeof(*c));

	if (!c)
		return NULL;
	r->commands = c;
	c = &r->commands[r->ncommands++];
	memset(c, 0, sizeof(*c));
	return c;
}

int runner_request_add_argv(runner_request *r, char *const *argv, size_t argc)
{
	runner_command *c = command_append(r);

	if (!c || !(c->argv = calloc(argc + 1, sizeof(char *))))
		return err_set(ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < argc; i++) {
		if (!(c->argv[i] = str_dup(argv[i])))
			return err_set(ERR_NOMEM, "out of memory");
		c->argc = i + 1;
	}
	return 0;
}

int runner_request_add_shell(runner_request *r, const char *shell)
{
	runner_command *c = command_append(r);

	if (!c || !(c->shell = str_dup(shell)))
		return err_set(ERR_NOMEM, "out of memory");
	return 0;
}

static void command_clear(runner_command *c)
{
	for (size_t i = 0; c->argv && i < c->argc; i++)
		free(c->argv[i]);
	free(c->argv);
	free(c->shell);
	free(c->workdir);
	runner_map_clear(&c->env);
}

void runner_request_free(runner_request *r)
{
	if (!r)
		return;
	free(r->repo_url);
	free(r->repo_ref);
	free(r->repo_commit);
	free(r->image);
	for (size_t i = 0; i < r->ncommands; i++)
		command_clear(&r->commands[i]);
	free(r->commands);
	runner_map_clear(&r->env);
	free(r->cpu);
	free(r->memory);
	runner_map_clear(&r->labels);
	free(r->idempotency_key);
	free(r);
}

/* ---- value validators -------------------------------------------------- */

static int why(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int why(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (out && size) {
		va_start(ap, fmt);
		vsnprintf(out, size, fmt, ap);
		va_end(ap);
	}
	return 0;
}

static int is_lower_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* path-component := [a-z0-9]+ (separator [a-z0-9]+)*,
 * separator := [_.] | "__" | "-"+ (distribution/reference regexp.go) */
static int path_component_ok(const char *s, size_t n)
{
	size_t i = 0;

	if (n == 0 || !is_lower_alnum((unsigned char)s[0]) || !is_lower_alnum((unsigned char)s[n - 1]))
		return 0;
	while (i < n) {
		if (is_lower_alnum((unsigned char)s[i])) {
			i++;
			continue;
		}
		if (s[i] == '.' || (s[i] == '_' && (i + 1 >= n || s[i + 1] != '_'))) {
			i++;
		} else if (s[i] == '_' && s[i + 1] == '_') {
			i += 2;
		} else if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else {
			return 0;
		}
		if (i >= n || !is_lower_alnum((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

/* host [":" port], host a DNS name of [A-Za-z0-9-] components or [IPv6] */
static int domain_ok(const char *s, size_t n)
{
	size_t i = 0, hostend = n;
	const char *colon = NULL;

	if (n && s[0] == '[') {
		const char *rb = memchr(s, ']', n);

		if (!rb)
			return 0;
		for (const char *p = s + 1; p < rb; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				return 0;
		i = (size_t)(rb - s) + 1;
		if (i < n && s[i] != ':')
			return 0;
		colon = i < n ? s + i : NULL;
	} else {
		colon = memchr(s, ':', n);
		hostend = colon ? (size_t)(colon - s) : n;
		if (hostend == 0)
			return 0;
		size_t start = 0;
		for (size_t j = 0; j <= hostend; j++) {
			if (j == hostend || s[j] == '.') {
				size_t l = j - start;

				if (l == 0 || s[start] == '-' || s[j - 1] == '-')
					return 0;
				start = j + 1;
			} else if (!isalnum((unsigned char)s[j]) && s[j] != '-') {
				return 0;
			}
		}
	}
	if (colon) {
		size_t plen = n - (size_t)(colon - s) - 1;

		if (plen == 0 || plen > 5)
			return 0;
		for (size_t j = 0; j < plen; j++)
			if (!isdigit((unsigned char)colon[1 + j]))
				return 0;
	}
	return 1;
}

int runner_image_ref_valid(const char *s, char *w, size_t ws)
{
	size_t n = strlen(s), namelen;
	const char *at, *name_end, *slash, *colon, *first_slash;

	if (n == 0)
		return why(w, ws, "is empty");
	if (n > 512)
		return why(w, ws, "is longer than 512 characters");
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return why(w, ws, "contains a space, control or non-ASCII character");
	at = strchr(s, '@');
	name_end = at ? at : s + n;
	if (at) {
		/* digest := algorithm ":" encoded; encoded := [a-fA-F0-9]{32,} */
		const char *dc = strchr(at + 1, ':');
		size_t hl;

		if (!dc || dc == at + 1)
			return why(w, ws, "has a digest without an algorithm (want @sha256:<hex>)");
		for (const char *p = at + 1; p < dc; p++)
			if (!isalnum((unsigned char)*p) && !strchr("+.-_", *p))
				return why(w, ws, "has an invalid digest algorithm");
		if (!isalpha((unsigned char)at[1]))
			return why(w, ws, "has an invalid digest algorithm");
		hl = strlen(dc + 1);
		if (hl < 32)
			return why(w, ws, "has a digest shorter than 32 hex digits");
		for (const char *p = dc + 1; *p; p++)
			if (!isxdigit((unsigned char)*p))
				return why(w, ws, "has a digest with a non-hex character");
		if (strncmp(at + 1, "sha256:", 7) == 0 && hl != 64)
			return why(w, ws, "has a sha256 digest that is not 64 hex digits");
	}
	/* tag: after the last '/', a ':' starts it */
	slash = NULL;
	for (const char *p = s; p < name_end; p++)
		if (*p == '/')
			slash = p;
	colon = memchr(slash ? slash : s, ':', (size_t)(name_end - (slash ? slash : s)));
	if (colon) {
		size_t tl = (size_t)(name_end - colon - 1);

		if (tl == 0 || tl > 128)
			return why(w, ws, "has a tag that is empty or longer than 128 characters");
		if (!isalnum((unsigned char)colon[1]) && colon[1] != '_')
			return why(w, ws, "has a tag that does not start with a letter, digit or '_'");
		for (const char *p = colon + 1; p < name_end; p++)
			if (!isalnum((unsigned char)*p) && !strchr("_.-", *p))
				return why(w, ws, "has an invalid character '%c' in its tag", *p);
		name_end = colon;
	}
	namelen = (size_t)(name_end - s);
	if (namelen == 0)
		return why(w, ws, "has no repository name");
	if (namelen > 255)
		return why(w, ws, "has a repository name longer than 255 characters");
	/* a first component with '.', ':' or "localhost" is a registry host
	 * (distribution/reference normalize.go splitDockerDomain) */
	const char *p = s;
	first_slash = memchr(s, '/', namelen);
	if (first_slash) {
		size_t dl = (size_t)(first_slash - s);

		if (memchr(s, '.', dl) || memchr(s, ':', dl) || (dl == 9 && !memcmp(s, "localhost", 9))) {
			if (!domain_ok(s, dl))
				return why(w, ws, "has an invalid registry host");
			p = first_slash + 1;
		}
	} else if (memchr(s, ':', namelen)) {
		return why(w, ws, "is not a valid image reference");
	}
	while (p <= name_end) {
		const char *e = memchr(p, '/', (size_t)(name_end - p));

		if (!e)
			e = name_end;
		if (!path_component_ok(p, (size_t)(e - p)))
			return why(w, ws,
				   "has an invalid repository path component \"%.*s\" (lower-case letters, digits and "
				   "single separators . _ __ -)",
				   (int)((e - p) > 64 ? 64 : (e - p)), p);
		p = e + 1;
	}
	return 1;
}

static int has_ctl_or_space(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f || (unsigned char)*s == NUL_MARK)
			return 1;
	return 0;
}

int runner_repo_url_valid(const char *s, int allow_local, char *w, size_t ws)
{
	size_t n = strlen(s);
	const char *rest;

	if (n == 0)
		return why(w, ws, "is empty");
	if (n > 2048)
		return why(w, ws, "is longer than 2048 characters");
	if (has_ctl_or_space(s))
		return why(w, ws, "contains a space or control character");
	if (s[0] == '-')
		return why(w, ws, "must not start with '-'");
	if (strstr(s, "::"))
		return why(w, ws, "names a git remote helper (\"transport::address\"), which is refused");
	if (s[0] == '/') {
		if (!allow_local)
			return why(w, ws, "is a local path, which this server does not allow (use https://)");
		return 1;
	}
	if (str_has_prefix(s, "file://")) {
		if (!allow_local)
			return why(w, ws, "is a file:// URL, which this server does not allow (use https://)");
		if (s[7] != '/')
			return why(w, ws, "is a file:// URL without an absolute path");
		return 1;
	}
	if (str_has_prefix(s, "https://"))
		rest = s + 8;
	else if (str_has_prefix(s, "http://"))
		rest = s + 7;
	else if (str_has_prefix(s, "ssh://"))
		rest = s + 6;
	else if (str_has_prefix(s, "git://"))
		rest = s + 6;
	else {
		/* scp-like ssh: [user@]host:path */
		const char *c = strchr(s, ':');

		if (strstr(s, "://"))
			return why(w, ws, "has an unsupported scheme (https://, http://, ssh://, git://%s)",
				   allow_local ? ", file://" : "");
		const char *sl = strchr(s, '/');

		if (c && (!sl || c < sl) && c > s && c[1]) {
			const char *host = s;
			const char *at = memchr(s, '@', (size_t)(c - s));

			if (at)
				host = at + 1;
			if (!domain_ok(host, (size_t)(c - host)))
				return why(w, ws, "has an invalid host");
			return 1;
		}
		return why(w, ws, "must be an https://, http://, ssh://, git:// URL or user@host:path%s",
			   allow_local ? ", a file:// URL or an absolute path" : "");
	}
	{
		const char *end = rest + strcspn(rest, "/?#");
		const char *at = NULL;

		for (const char *p = rest; p < end; p++)
			if (*p == '@')
				at = p;
		if (at) {
			if (memchr(rest, ':', (size_t)(at - rest)) && !str_has_prefix(s, "ssh://"))
				return why(w, ws, "embeds a password; pass credentials another way");
			rest = at + 1;
		}
		if (end == rest)
			return why(w, ws, "has no host");
		if (!domain_ok(rest, (size_t)(end - rest)))
			return why(w, ws, "has an invalid host \"%.*s\"", (int)((end - rest) > 64 ? 64 : (end - rest)),
				   rest);
		if (*end != '/' || !end[1])
			return why(w, ws, "has no repository path");
	}
	return 1;
}

int runner_git_ref_valid(const char *s, char *w, size_t ws)
{
	size_t n = strlen(s);
	const char *comp = s;

	/* the rules of git check-ref-format (git refs.c check_refname_component) */
	if (n == 0)
		return why(w, ws, "is empty");
	if (n > 255)
		return why(w, ws, "is longer than 255 characters");
	if (s[0] == '-')
		return why(w, ws, "must not start with '-'");
	if (s[0] == '/' || s[n - 1] == '/' || s[n - 1] == '.')
		return why(w, ws, "must not start with '/' or end with '/' or '.'");
	if (strcmp(s, "@") == 0 || strstr(s, "@{") || strstr(s, "..") || strstr(s, "//"))
		return why(w, ws, "must not be \"@\" or contain \"@{\", \"..\" or \"//\"");
	if (str_has_suffix(s, ".lock"))
		return why(w, ws, "must not end with \".lock\"");
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || (unsigned char)*p == NUL_MARK ||
		    strchr("~^:?*[\\", *p))
			return why(w, ws, "contains a character git does not allow in a ref name");
		if (*p == '/')
			comp = p + 1;
		else if (p == comp && *p == '.')
			return why(w, ws, "has a component starting with '.'");
	}
	return 1;
}

int runner_workdir_valid(const char *s, char *w, size_t ws)
{
	const char *p = s;

	if (!*s)
		return why(w, ws, "is empty (use \".\" for the workspace)");
	if (strlen(s) > 1024)
		return why(w, ws, "is longer than 1024 characters");
	if (s[0] == '/')
		return why(w, ws, "must be relative to the workspace, not absolute");
	for (const char *q = s; *q; q++)
		if ((unsigned char)*q < 0x20 || *q == 0x7f || (unsigned char)*q == NUL_MARK)
			return why(w, ws, "contains a control character");
	while (*p) {
		size_t l = strcspn(p, "/");

		if (l == 2 && p[0] == '.' && p[1] == '.')
			return why(w, ws, "must stay inside the workspace (no \"..\")");
		p += l;
		while (*p == '/')
			p++;
	}
	return 1;
}

static int env_name_ok(const char *s)
{
	if (!*s || strlen(s) > 256 || !(isalpha((unsigned char)*s) || *s == '_'))
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return 0;
	return 1;
}

/* Label value syntax: (([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?, <= 63
 * (k/k s/apimachinery/pkg/util/validation/validation.go) */
static int label_value_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0)
		return 1;
	if (n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80 || (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i])))
			return 0;
	return 1;
}

static int label_key_ok(const char *s)
{
	const char *sl = strchr(s, '/');

	if (sl) {
		char prefix[254];

		if ((size_t)(sl - s) >= sizeof(prefix))
			return 0;
		memcpy(prefix, s, (size_t)(sl - s));
		prefix[sl - s] = '\0';
		if (!str_is_dns1123_subdomain(prefix))
			return 0;
		s = sl + 1;
	}
	return *s && label_value_ok(s);
}

static int idempotency_key_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._:-", *s))
			return 0;
	return 1;
}

static int hex_oid_ok(const char *s)
{
	size_t n = strlen(s);

	if (n != 40 && n != 64)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s) && !(*s >= 'a' && *s <= 'f'))
			return 0;
	return 1;
}

/* ---- quantities -------------------------------------------------------- */

static int mul_ok(int64_t *v, int64_t m)
{
	if (*v > INT64_MAX / m)
		return 0;
	*v *= m;
	return 1;
}

int runner_quantity_parse(int64_t *out, const char *s, int scale)
{
	int64_t m = 0;
	int e10 = 0, digits = 0, frac = 0, any = 0;
	const char *p = s;
	int bin = 0;

	if (*p == '+')
		p++;
	while (isdigit((unsigned char)*p) || (*p == '.' && !frac)) {
		if (*p == '.') {
			frac = 1;
			p++;
			continue;
		}
		if (digits >= 18)
			return err_set(ERR_TOOBIG, "quantity \"%s\" has too many digits", s);
		any = 1;
		if (m || *p != '0')
			digits++;
		m = m * 10 + (*p - '0');
		if (frac)
			e10--;
		p++;
	}
	if (!any)
		return err_set(ERR_INVALID, "\"%s\" is not a quantity (like 500m, 2, 1.5Gi)", s);
	if ((*p == 'e' || *p == 'E') && p[1] != 'i') {
		int x = 0, neg = 0;

		p++;
		if (*p == '+' || *p == '-')
			neg = *p++ == '-';
		if (!isdigit((unsigned char)*p))
			return err_set(ERR_INVALID, "\"%s\" is not a quantity (like 500m, 2, 1.5Gi)", s);
		while (isdigit((unsigned char)*p)) {
			x = x * 10 + (*p++ - '0');
			if (x > 30)
				return err_set(ERR_TOOBIG, "quantity \"%s\" is out of range", s);
		}
		e10 += neg ? -x : x;
	} else if (*p) {
		static const char *const binsfx[] = { "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" };
		static const char decsfx[] = "kMGTPE";
		int found = 0;

		for (int i = 0; i < 6; i++)
			if (strcmp(p, binsfx[i]) == 0)
				bin = i + 1, found = 1;
		if (!found) {
			if (strcmp(p, "n") == 0)
				e10 -= 9, found = 1;
			else if (strcmp(p, "u") == 0)
				e10 -= 6, found = 1;
			else if (strcmp(p, "m") == 0)
				e10 -= 3, found = 1;
			else if (p[1] == '\0' && strchr(decsfx, *p))
				e10 += 3 * (int)(strchr(decsfx, *p) - decsfx + 1), found = 1;
		}
		if (!found)
			return err_set(ERR_INVALID, "\"%s\" has an unknown suffix (Ki Mi Gi Ti Pi Ei n u m k M G T P E)", s);
	}
	for (int i = 0; i < bin; i++)
		if (!mul_ok(&m, 1024))
			return err_set(ERR_TOOBIG, "quantity \"%s\" is out of range", s);
	e10 += scale;
	while (e10 > 0) {
		if (!mul_ok(&m, 10))
			return err_set(ERR_TOOBIG, "quantity \"%s\" is out of range", s);
		e10--;
	}
	while (e10 < 0) {
		m = m / 10 + (m % 10 != 0); /* round up, as Quantity.ScaledValue does */
		e10++;
	}
	*out = m;
	return 0;
}

/* ---- validation of a decoded or built request ------------------------- */

static const char argv0_meta[] = " \t\n\r;&|$`<>(){}[]*?!'\"\\#~";

static int validate_map_env(runner_request_error *e, const char *path, const runner_map *m,
			    const runner_limits *lim)
{
	char p[256];
	size_t bytes = 0;

	if (m->n > lim->max_env)
		return fail(e, 400, "FieldValueTooMany", path, "has %zu variables, at most %zu allowed", m->n,
			    lim->max_env);
	for (size_t i = 0; i < m->n; i++) {
		path_join(p, sizeof(p), path, m->items[i].key);
		if (!env_name_ok(m->items[i].key))
			return fail(e, 400, "FieldValueInvalid", p,
				    "is not a valid environment variable name (letters, digits, '_', not starting "
				    "with a digit)");
		if (has_nul_mark(m->items[i].value))
			return fail(e, 400, "FieldValueInvalid", p, "must not contain a NUL character");
		bytes += strlen(m->items[i].key) + strlen(m->items[i].value) + 2;
	}
	if (bytes > lim->max_env_bytes)
		return fail(e, 400, "FieldValueTooLong", path, "is %zu bytes, at most %zu allowed", bytes,
			    lim->max_env_bytes);
	return 0;
}

static int validate_command(runner_request_error *e, const runner_command *c, size_t idx,
			    const runner_limits *lim)
{
	char base[64], p[256], w[200];
	size_t total = 0;
	int rc;

	path_index(base, sizeof(base), "commands", idx);
	if ((c->argv && c->argc) == !!c->shell) {
		path_join(p, sizeof(p), base, c->shell ? "shell" : "argv");
		return fail(e, 400, c->shell ? "FieldValueInvalid" : "FieldValueRequired", p,
			    "a command has exactly one of \"argv\" (a list of strings) or \"shell\" (a string)");
	}
	if (c->shell) {
		path_join(p, sizeof(p), base, "shell");
		if (!*c->shell)
			return fail(e, 400, "FieldValueRequired", p, "must not be empty");
		if (has_nul_mark(c->shell))
			return fail(e, 400, "FieldValueInvalid", p, "must not contain a NUL character");
		if (strlen(c->shell) > lim->max_arg_bytes)
			return fail(e, 400, "FieldValueTooLong", p, "is %zu bytes, at most %zu allowed",
				    strlen(c->shell), lim->max_arg_bytes);
	} else {
		char a[256];

		path_join(p, sizeof(p), base, "argv");
		if (c->argc > lim->max_argv)
			return fail(e, 400, "FieldValueTooMany", p, "has %zu entries, at most %zu allowed", c->argc,
				    lim->max_argv);
		for (size_t i = 0; i < c->argc; i++) {
			size_t l = strlen(c->argv[i]);

			path_index(a, sizeof(a), p, i);
			if (has_nul_mark(c->argv[i]))
				return fail(e, 400, "FieldValueInvalid", a, "must not contain a NUL character");
			if (l > lim->max_arg_bytes)
				return fail(e, 400, "FieldValueTooLong", a, "is %zu bytes, at most %zu allowed", l,
					    lim->max_arg_bytes);
			total += l + 1;
		}
		path_index(a, sizeof(a), p, 0);
		if (!*c->argv[0])
			return fail(e, 400, "FieldValueRequired", a, "the program name must not be empty");
		if (c->argv[0][strcspn(c->argv[0], argv0_meta)])
			return fail(e, 400, "FieldValueInvalid", a,
				    "the program name contains the shell metacharacter '%c'; argv is run without a "
				    "shell: use \"shell\" for a shell command line",
				    c->argv[0][strcspn(c->argv[0], argv0_meta)]);
		if (total > lim->max_command_bytes)
			return fail(e, 400, "FieldValueTooLong", p, "is %zu bytes in all, at most %zu allowed", total,
				    lim->max_command_bytes);
	}
	if (c->timeout_seconds < 0 || c->timeout_seconds > lim->max_timeout_seconds) {
		path_join(p, sizeof(p), base, "timeoutSeconds");
		return fail(e, 400, "FieldValueInvalid", p, "must be between 1 and %d", lim->max_timeout_seconds);
	}
	if (c->workdir && !runner_workdir_valid(c->workdir, w, sizeof(w))) {
		path_join(p, sizeof(p), base, "workdir");
		return fail(e, 400, "FieldValueInvalid", p, "%s", w);
	}
	path_join(p, sizeof(p), base, "env");
	if ((rc = validate_map_env(e, p, &c->env, lim)))
		return rc;
	return 0;
}

int runner_request_validate(const runner_request *r, runner_request_error *e, const runner_limits *lim)
{
	char w[200], p[256];
	int64_t q;
	int rc;

	memset(e, 0, sizeof(*e));
	if (r->repo_url && !runner_repo_url_valid(r->repo_url, lim->allow_local_repos, w, sizeof(w)))
		return fail(e, 400, "FieldValueInvalid", "repo.url", "%s", w);
	if (!r->repo_url && (r->repo_ref || r->repo_commit))
		return fail(e, 400, "FieldValueRequired", "repo.url", "is required when a ref or commit is given");
	if (r->repo_ref && !runner_git_ref_valid(r->repo_ref, w, sizeof(w)))
		return fail(e, 400, "FieldValueInvalid", "repo.ref", "%s", w);
	if (r->repo_commit && !hex_oid_ok(r->repo_commit))
		return fail(e, 400, "FieldValueInvalid", "repo.commit",
			    "must be a full commit id (40 or 64 lower-case hex digits)");
	if (r->image && !runner_image_ref_valid(r->image, w, sizeof(w)))
		return fail(e, 400, "FieldValueInvalid", "image", "\"%.100s\" %s", r->image, w);
	if (r->ncommands == 0)
		return fail(e, 400, "FieldValueRequired", "commands", "at least one command is required");
	if (r->ncommands > lim->max_commands)
		return fail(e, 400, "FieldValueTooMany", "commands", "has %zu commands, at most %zu allowed",
			    r->ncommands, lim->max_commands);
	for (size_t i = 0; i < r->ncommands; i++)
		if ((rc = validate_command(e, &r->commands[i], i, lim)))
			return rc;
	if ((rc = validate_map_env(e, "env", &r->env, lim)))
		return rc;
	if (r->timeout_seconds < 0 || r->timeout_seconds > lim->max_timeout_seconds)
		return fail(e, 400, "FieldValueInvalid", "timeoutSeconds", "must be between 1 and %d",
			    lim->max_timeout_seconds);
	if (r->cpu) {
		if (runner_quantity_parse(&q, r->cpu, 3) || q <= 0)
			return fail(e, 400, "FieldValueInvalid", "resources.cpu",
				    "\"%.40s\" is not a positive CPU quantity (like \"500m\" or \"2\")", r->cpu);
		if (q > lim->max_cpu_millis)
			return fail(e, 400, "FieldValueInvalid", "resources.cpu",
				    "\"%.40s\" is more than this server allows (%lldm)", r->cpu,
				    (long long)lim->max_cpu_millis);
	}
	if (r->memory) {
		if (runner_quantity_parse(&q, r->memory, 0) || q <= 0)
			return fail(e, 400, "FieldValueInvalid", "resources.memory",
				    "\"%.40s\" is not a positive memory quantity (like \"512Mi\" or \"2Gi\")", r->memory);
		if (q > lim->max_memory_bytes)
			return fail(e, 400, "FieldValueInvalid", "resources.memory",
				    "\"%.40s\" is more than this server allows (%lld bytes)", r->memory,
				    (long long)lim->max_memory_bytes);
	}
	if (r->log_tail_lines < 0 || r->log_tail_lines > lim->max_log_tail_lines)
		return fail(e, 400, "FieldValueInvalid", "collect.logTailLines", "must be between 0 and %d",
			    lim->max_log_tail_lines);
	if (r->labels.n > lim->max_labels)
		return fail(e, 400, "FieldValueTooMany", "labels", "has %zu labels, at most %zu allowed", r->labels.n,
			    lim->max_labels);
	for (size_t i = 0; i < r->labels.n; i++) {
		path_join(p, sizeof(p), "labels", r->labels.items[i].key);
		if (!label_key_ok(r->labels.items[i].key))
			return fail(e, 400, "FieldValueInvalid", p,
				    "is not a valid label key ([prefix/]name, name at most 63 of [A-Za-z0-9-_.])");
		if (str_has_prefix(r->labels.items[i].key, "ci-fixer.io/") ||
		    str_has_prefix(r->labels.items[i].key, "app.kubernetes.io/"))
			return fail(e, 400, "FieldValueInvalid", p, "uses a prefix reserved for ci-fixer's own labels");
		if (!label_value_ok(r->labels.items[i].value))
			return fail(e, 400, "FieldValueInvalid", p,
				    "has an invalid value (at most 63 of [A-Za-z0-9-_.], starting and ending "
				    "alphanumeric)");
	}
	if (r->idempotency_key && !idempotency_key_ok(r->idempotency_key))
		return fail(e, 400, "FieldValueInvalid", "idempotencyKey",
			    "must be 1 to 128 characters of letters, digits and . _ : -");
	return 0;
}

/* ---- decoding ---------------------------------------------------------- */

static int decode_command(runner_request_error *e, const cJSON *v, runner_command *c, size_t idx,
			  const runner_limits *lim)
{
	static const char *const fields[] = { "argv", "shell", "timeoutSeconds", "env", "workdir",
					      "continueOnError", NULL };
	char base[64], p[256];
	const cJSON *f;
	int rc;

	path_index(base, sizeof(base), "commands", idx);
	if ((rc = check_members(e, base, v, fields, "a command")))
		return rc;
	if ((f = member(v, "argv"))) {
		size_t n = 0, i = 0;
		const cJSON *a;

		path_join(p, sizeof(p), base, "argv");
		if (!cJSON_IsArray(f))
			return fail(e, 400, "FieldValueInvalid", p, "must be a list of strings");
		for (a = f->child; a; a = a->next)
			n++;
		if (n == 0)
			return fail(e, 400, "FieldValueRequired", p, "must hold at least the program name");
		if (n > lim->max_argv)
			return fail(e, 400, "FieldValueTooMany", p, "has %zu entries, at most %zu allowed", n,
				    lim->max_argv);
		if (!(c->argv = calloc(n + 1, sizeof(char *))))
			return err_set(ERR_NOMEM, "out of memory");
		for (a = f->child; a; a = a->next, i++) {
			char ap[256];

			path_index(ap, sizeof(ap), p, i);
			if ((rc = get_string(e, ap, a, &c->argv[i], lim->max_arg_bytes, 1)))
				return rc;
			c->argc = i + 1;
		}
	}
	if ((f = member(v, "shell"))) {
		path_join(p, sizeof(p), base, "shell");
		if ((rc = get_string(e, p, f, &c->shell, lim->max_arg_bytes, 0)))
			return rc;
	}
	if ((f = member(v, "timeoutSeconds"))) {
		path_join(p, sizeof(p), base, "timeoutSeconds");
		if ((rc = get_int(e, p, f, &c->timeout_seconds, 1, lim->max_timeout_seconds)))
			return rc;
	}
	if ((f = member(v, "env"))) {
		path_join(p, sizeof(p), base, "env");
		if ((rc = get_map(e, p, f, &c->env, lim->max_env, lim->max_env_bytes, lim->max_env_bytes)))
			return rc;
	}
	if ((f = member(v, "workdir"))) {
		path_join(p, sizeof(p), base, "workdir");
		if ((rc = get_string(e, p, f, &c->workdir, 4096, 1)))
			return rc;
	}
	if ((f = member(v, "continueOnError"))) {
		path_join(p, sizeof(p), base, "continueOnError");
		if ((rc = get_bool(e, p, f, &c->continue_on_error)))
			return rc;
	}
	return 0;
}

static int get_quantity(runner_request_error *e, const char *path, const cJSON *v, char **out)
{
	if (cJSON_IsNumber(v)) {
		char tmp[64];

		if (!isfinite(v->valuedouble) || v->valuedouble <= 0)
			return fail(e, 400, "FieldValueInvalid", path, "must be a positive quantity");
		snprintf(tmp, sizeof(tmp), "%.15g", v->valuedouble);
		free(*out);
		if (!(*out = str_dup(tmp)))
			return err_set(ERR_NOMEM, "out of memory");
		return 0;
	}
	return get_string(e, path, v, out, 64, 0);
}

static int decode_tree(runner_request_error *e, const cJSON *root, runner_request *r, const runner_limits *lim)
{
	static const char *const top[] = { "repo", "image", "commands", "env", "timeoutSeconds", "resources",
					   "collect", "labels", "idempotencyKey", NULL };
	static const char *const repo_f[] = { "url", "ref", "commit", NULL };
	static const char *const res_f[] = { "cpu", "memory", NULL };
	static const char *const col_f[] = { "patch", "logTailLines", NULL };
	const cJSON *f, *g;
	int rc;

	if (!cJSON_IsObject(root))
		return fail(e, 400, "InvalidJSON", "", "the request must be a JSON object");
	if ((rc = check_members(e, "", root, top, "the request")))
		return rc;
	if ((f = member(root, "repo"))) {
		if ((rc = check_members(e, "repo", f, repo_f, "repo")))
			return rc;
		if (!member(f, "url"))
			return fail(e, 400, "FieldValueRequired", "repo.url", "is required in repo");
		if ((rc = get_string(e, "repo.url", member(f, "url"), &r->repo_url, 4096, 0)))
			return rc;
		if ((g = member(f, "ref")) && (rc = get_string(e, "repo.ref", g, &r->repo_ref, 1024, 0)))
			return rc;
		if ((g = member(f, "commit"))) {
			if ((rc = get_string(e, "repo.commit", g, &r->repo_commit, 128, 0)))
				return rc;
			for (char *p = r->repo_commit; *p; p++)
				*p = (char)tolower((unsigned char)*p);
		}
	}
	if ((f = member(root, "image")) && (rc = get_string(e, "image", f, &r->image, 1024, 0)))
		return rc;
	f = member(root, "commands");
	if (!f)
		return fail(e, 400, "FieldValueRequired", "commands", "is required: a list of commands to run");
	if (!cJSON_IsArray(f))
		return fail(e, 400, "FieldValueInvalid", "commands", "must be a list of command objects");
	{
		size_t n = 0, i = 0;

		for (g = f->child; g; g = g->next)
			n++;
		if (n == 0)
			return fail(e, 400, "FieldValueRequired", "commands", "at least one command is required");
		if (n > lim->max_commands)
			return fail(e, 400, "FieldValueTooMany", "commands", "has %zu commands, at most %zu allowed", n,
				    lim->max_commands);
		if (!(r->commands = calloc(n, sizeof(*r->commands))))
			return err_set(ERR_NOMEM, "out of memory");
		for (g = f->child; g; g = g->next, i++) {
			r->ncommands = i + 1;
			if ((rc = decode_command(e, g, &r->commands[i], i, lim)))
				return rc;
		}
	}
	if ((f = member(root, "env")) &&
	    (rc = get_map(e, "env", f, &r->env, lim->max_env, lim->max_env_bytes, lim->max_env_bytes)))
		return rc;
	if ((f = member(root, "timeoutSeconds")) &&
	    (rc = get_int(e, "timeoutSeconds", f, &r->timeout_seconds, 1, lim->max_timeout_seconds)))
		return rc;
	if ((f = member(root, "resources"))) {
		if ((rc = check_members(e, "resources", f, res_f, "resources")))
			return rc;
		if ((g = member(f, "cpu")) && (rc = get_quantity(e, "resources.cpu", g, &r->cpu)))
			return rc;
		if ((g = member(f, "memory")) && (rc = get_quantity(e, "resources.memory", g, &r->memory)))
			return rc;
	}
	if ((f = member(root, "collect"))) {
		if ((rc = check_members(e, "collect", f, col_f, "collect")))
			return rc;
		if ((g = member(f, "patch")) && (rc = get_bool(e, "collect.patch", g, &r->collect_patch)))
			return rc;
		if ((g = member(f, "logTailLines")) &&
		    (rc = get_int(e, "collect.logTailLines", g, &r->log_tail_lines, 0, lim->max_log_tail_lines)))
			return rc;
	}
	if ((f = member(root, "labels")) && (rc = get_map(e, "labels", f, &r->labels, lim->max_labels, 64 * 1024, 63)))
		return rc;
	if ((f = member(root, "idempotencyKey")) &&
	    (rc = get_string(e, "idempotencyKey", f, &r->idempotency_key, 128, 0)))
		return rc;
	return runner_request_validate(r, e, lim);
}

int runner_request_decode(runner_request **out, runner_request_error *e, const char *json, size_t len,
			  const runner_limits *lim)
{
	runner_request *r = NULL;
	char *copy = NULL;
	cJSON *root = NULL;
	const char *end = NULL;
	int rc;

	*out = NULL;
	memset(e, 0, sizeof(*e));
	if (len > lim->max_body)
		return fail(e, 413, "RequestTooLarge", "",
			    "the request body is %zu bytes, at most %zu allowed", len, lim->max_body);
	if (len == 0)
		return fail(e, 400, "InvalidJSON", "", "the request body is empty; send a JSON run request");
	if (!(copy = malloc(len + 1)))
		return err_set(ERR_NOMEM, "out of memory");
	memcpy(copy, json, len);
	copy[len] = '\0';
	if ((rc = raw_check(e, (unsigned char *)copy, len)))
		goto done;
	/* len + 1: with require_null_terminated, cJSON wants the NUL inside the length */
	root = cJSON_ParseWithLengthOpts(copy, len + 1, &end, 1);
	if (!root) {
		size_t off = end && end >= copy && end <= copy + len ? (size_t)(end - copy) : 0;

		rc = fail(e, 400, "InvalidJSON", "", "invalid JSON near offset %zu", off);
		goto done;
	}
	if (!(r = runner_request_new())) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto done;
	}
	if ((rc = decode_tree(e, root, r, lim)))
		goto done;
	*out = r;
	r = NULL;
done:
	cJSON_Delete(root);
	free(copy);
	runner_request_free(r);
	return rc;
}

/* ---- encoding ---------------------------------------------------------- */

static int enc_map(buf *b, const runner_map *m)
{
	int rc = buf_append_byte(b, '{');

	for (size_t i = 0; !rc && i < m->n; i++) {
		if (i)
			rc = buf_append_byte(b, ',');
		if (!rc)
			rc = str_json_quote(b, m->items[i].key);
		if (!rc)
			rc = buf_append_byte(b, ':');
		if (!rc)
			rc = str_json_quote(b, m->items[i].value);
	}
	return rc ? rc : buf_append_byte(b, '}');
}

int runner_request_encode(buf *b, const runner_request *r)
{
	int rc = buf_append_byte(b, '{');

#define CK(x) do { if (!rc) rc = (x); } while (0)
	if (r->repo_url) {
		CK(buf_append_str(b, "\"repo\":{\"url\":"));
		CK(str_json_quote(b, r->repo_url));
		if (r->repo_ref) {
			CK(buf_append_str(b, ",\"ref\":"));
			CK(str_json_quote(b, r->repo_ref));
		}
		if (r->repo_commit) {
			CK(buf_append_str(b, ",\"commit\":"));
			CK(str_json_quote(b, r->repo_commit));
		}
		CK(buf_append_str(b, "},"));
	}
	if (r->image) {
		CK(buf_append_str(b, "\"image\":"));
		CK(str_json_quote(b, r->image));
		CK(buf_append_byte(b, ','));
	}
	CK(buf_append_str(b, "\"commands\":["));
	for (size_t i = 0; i < r->ncommands; i++) {
		const runner_command *c = &r->commands[i];

		CK(buf_append_str(b, i ? ",{" : "{"));
		if (c->shell) {
			CK(buf_append_str(b, "\"shell\":"));
			CK(str_json_quote(b, c->shell));
		} else {
			CK(buf_append_str(b, "\"argv\":["));
			for (size_t j = 0; j < c->argc; j++) {
				if (j)
					CK(buf_append_byte(b, ','));
				CK(str_json_quote(b, c->argv[j]));
			}
			CK(buf_append_byte(b, ']'));
		}
		if (c->timeout_seconds)
			CK(buf_printf(b, ",\"timeoutSeconds\":%d", c->timeout_seconds));
		if (c->env.n) {
			CK(buf_append_str(b, ",\"env\":"));
			CK(enc_map(b, &c->env));
		}
		if (c->workdir) {
			CK(buf_append_str(b, ",\"workdir\":"));
			CK(str_json_quote(b, c->workdir));
		}
		if (c->continue_on_error)
			CK(buf_append_str(b, ",\"continueOnError\":true"));
		CK(buf_append_byte(b, '}'));
	}
	CK(buf_append_byte(b, ']'));
	if (r->env.n) {
		CK(buf_append_str(b, ",\"env\":"));
		CK(enc_map(b, &r->env));
	}
	if (r->timeout_seconds)
		CK(buf_printf(b, ",\"timeoutSeconds\":%d", r->timeout_seconds));
	if (r->cpu || r->memory) {
		CK(buf_append_str(b, ",\"resources\":{"));
		if (r->cpu) {
			CK(buf_append_str(b, "\"cpu\":"));
			CK(str_json_quote(b, r->cpu));
		}
		if (r->memory) {
			CK(buf_append_str(b, r->cpu ? ",\"memory\":" : "\"memory\":"));
			CK(str_json_quote(b, r->memory));
		}
		CK(buf_append_byte(b, '}'));
	}
	CK(buf_printf(b, ",\"collect\":{\"patch\":%s,\"logTailLines\":%d}", r->collect_patch ? "true" : "false",
		      r->log_tail_lines));
	if (r->labels.n) {
		CK(buf_append_str(b, ",\"labels\":"));
		CK(enc_map(b, &r->labels));
	}
	if (r->idempotency_key) {
		CK(buf_append_str(b, ",\"idempotencyKey\":"));
		CK(str_json_quote(b, r->idempotency_key));
	}
	CK(buf_append_byte(b, '}'));
#undef CK
	return rc;
}
