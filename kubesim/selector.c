/*
 * selector: see selector.h. A selector is a conjunction of requirements.
 */
#include "kubesim/selector.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubesim/resources.h"
#include "util/err.h"
#include "util/str.h"

enum op { OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOTEXISTS, OP_GT, OP_LT };

typedef struct req {
	char *key;
	enum op op;
	char **vals;
	int n_vals;
} req;

struct ks_selector {
	req *r;
	int n;
};

static void req_clear(req *q)
{
	free(q->key);
	for (int i = 0; i < q->n_vals; i++)
		free(q->vals[i]);
	free(q->vals);
}

void ks_selector_free(ks_selector *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->n; i++)
		req_clear(&s->r[i]);
	free(s->r);
	free(s);
}

static int add_req(ks_selector *s, req *q)
{
	req *nr = realloc(s->r, (size_t)(s->n + 1) * sizeof *nr);
	if (!nr)
		return err_set(ERR_NOMEM, "out of memory");
	s->r = nr;
	s->r[s->n++] = *q;
	return 0;
}

static int add_val(req *q, const char *v, size_t n)
{
	char **nv = realloc(q->vals, (size_t)(q->n_vals + 1) * sizeof *nv);
	if (!nv)
		return err_set(ERR_NOMEM, "out of memory");
	q->vals = nv;
	q->vals[q->n_vals] = str_ndup(v, n);
	if (!q->vals[q->n_vals])
		return err_set(ERR_NOMEM, "out of memory");
	q->n_vals++;
	return 0;
}

static void skip_ws(const char **p)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
}

static int is_key_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.' || c == '/';
}

static int is_val_char(char c)
{
	return c && c != ',' && c != ')' && c != '(' && c != ' ' && c != '=' && c != '!';
}

static int read_word(const char **p, int (*ok)(char), const char **start, size_t *len)
{
	skip_ws(p);
	*start = *p;
	while (**p && ok(**p))
		(*p)++;
	*len = (size_t)(*p - *start);
	return 0;
}

static int is_field_val_char(char c) { return c && c != ','; }

static int parse(ks_selector **out, const char *s, int fields)
{
	*out = NULL;
	ks_selector *sel = calloc(1, sizeof *sel);
	if (!sel)
		return err_set(ERR_NOMEM, "out of memory");
	if (!s || !s[0]) {
		*out = sel;
		return 0;
	}
	if (strlen(s) > KS_SELECTOR_MAX_LEN) {
		ks_selector_free(sel);
		return err_set(ERR_TOOBIG, "selector longer than %d bytes", KS_SELECTOR_MAX_LEN);
	}
	const char *p = s;
	int rc = 0;
	for (;;) {
		req q = {0};
		const char *ks;
		size_t kl;
		skip_ws(&p);
		int neg = 0;
		if (!fields && *p == '!') {
			neg = 1;
			p++;
		}
		read_word(&p, is_key_char, &ks, &kl);
		if (kl == 0) {
			rc = err_set(ERR_INVALID, "unable to parse requirement: found '%.20s', expected: identifier", p);
			goto fail;
		}
		q.key = str_ndup(ks, kl);
		if (!fields && !ks_valid_qualified_name(q.key)) {
			req_clear(&q);
			rc = err_set(ERR_INVALID,
				     "unable to parse requirement: <nil>: Invalid value: \"%.100s\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
				     ks_selector_key(sel, -1) ? "" : s);
			goto fail;
		}
		skip_ws(&p);
		if (neg) {
			q.op = OP_NOTEXISTS;
		} else if (p[0] == '=' && p[1] == '=') {
			q.op = OP_EQ;
			p += 2;
		} else if (p[0] == '=') {
			q.op = OP_EQ;
			p += 1;
		} else if (p[0] == '!' && p[1] == '=') {
			q.op = OP_NE;
			p += 2;
		} else if (!fields && (p[0] == '>' || p[0] == '<')) {
			q.op = p[0] == '>' ? OP_GT : OP_LT;
			p++;
		} else if (!fields && strncmp(p, "in", 2) == 0 && (p[2] == ' ' || p[2] == '(')) {
			q.op = OP_IN;
			p += 2;
		} else if (!fields && strncmp(p, "notin", 5) == 0 && (p[5] == ' ' || p[5] == '(')) {
			q.op = OP_NOTIN;
			p += 5;
		} else if (!fields && (*p == ',' || *p == 0)) {
			q.op = OP_EXISTS;
		} else {
			req_clear(&q);
			rc = err_set(ERR_INVALID, fields ? "invalid selector: '%.200s'; can't understand '%.100s'"
							 : "unable to parse requirement: found '%.100s', expected: in, notin, =, ==, !=, gt, lt",
				     fields ? s : p, p);
			goto fail;
		}
		if (q.op == OP_IN || q.op == OP_NOTIN) {
			skip_ws(&p);
			if (*p != '(') {
				req_clear(&q);
				rc = err_set(ERR_INVALID, "unable to parse requirement: found '%.20s', expected: '('", p);
				goto fail;
			}
			p++;
			for (;;) {
				const char *vs;
				size_t vl;
				read_word(&p, is_val_char, &vs, &vl);
				if (add_val(&q, vs, vl)) {
					req_clear(&q);
					rc = ERR_NOMEM;
					goto fail;
				}
				skip_ws(&p);
				if (*p == ',') {
					p++;
					continue;
				}
				if (*p == ')') {
					p++;
					break;
				}
				req_clear(&q);
				rc = err_set(ERR_INVALID, "unable to parse requirement: found '%.20s', expected: ',', ')'", p);
				goto fail;
			}
		} else if (q.op == OP_EQ || q.op == OP_NE || q.op == OP_GT || q.op == OP_LT) {
			const char *vs;
			size_t vl;
			read_word(&p, fields ? is_field_val_char : is_val_char, &vs, &vl);
			if (add_val(&q, vs, vl)) {
				req_clear(&q);
				rc = ERR_NOMEM;
				goto fail;
			}
			if (!fields && !ks_valid_label_value(q.vals[0])) {
				req_clear(&q);
				rc = err_set(ERR_INVALID, "unable to parse requirement: invalid label value: \"%.100s\"", s);
				goto fail;
			}
		}
		if (add_req(sel, &q)) {
			req_clear(&q);
			rc = ERR_NOMEM;
			goto fail;
		}
		skip_ws(&p);
		if (*p == 0)
			break;
		if (*p != ',') {
			rc = err_set(ERR_INVALID, "unable to parse requirement: found '%.20s', expected: ','", p);
			goto fail;
		}
		p++;
	}
	*out = sel;
	return 0;
fail:
	ks_selector_free(sel);
	return rc;
}

int ks_selector_parse_labels(ks_selector **out, const char *s) { return parse(out, s, 0); }
int ks_selector_parse_fields(ks_selector **out, const char *s) { return parse(out, s, 1); }

int ks_selector_from_object(ks_selector **out, const cJSON *sel)
{
	*out = calloc(1, sizeof **out);
	if (!*out)
		return err_set(ERR_NOMEM, "out of memory");
	const cJSON *ml = cJSON_GetObjectItemCaseSensitive(sel, "matchLabels");
	const cJSON *e;
	cJSON_ArrayForEach(e, ml)
	{
		req q = {0};
		q.key = str_dup(e->string);
		q.op = OP_EQ;
		if (add_val(&q, cJSON_IsString(e) ? e->valuestring : "", cJSON_IsString(e) ? strlen(e->valuestring) : 0) ||
		    add_req(*out, &q)) {
			req_clear(&q);
			goto fail;
		}
	}
	const cJSON *me = cJSON_GetObjectItemCaseSensitive(sel, "matchExpressions");
	cJSON_ArrayForEach(e, me)
	{
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "key");
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(e, "operator");
		if (!cJSON_IsString(k) || !cJSON_IsString(o))
			goto fail;
		req q = {0};
		q.key = str_dup(k->valuestring);
		if (strcmp(o->valuestring, "In") == 0)
			q.op = OP_IN;
		else if (strcmp(o->valuestring, "NotIn") == 0)
			q.op = OP_NOTIN;
		else if (strcmp(o->valuestring, "Exists") == 0)
			q.op = OP_EXISTS;
		else if (strcmp(o->valuestring, "DoesNotExist") == 0)
			q.op = OP_NOTEXISTS;
		else {
			req_clear(&q);
			goto fail;
		}
		const cJSON *v;
		cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(e, "values"))
		{
			if (cJSON_IsString(v) && add_val(&q, v->valuestring, strlen(v->valuestring))) {
				req_clear(&q);
				goto fail;
			}
		}
		if (add_req(*out, &q)) {
			req_clear(&q);
			goto fail;
		}
	}
	return 0;
fail:
	ks_selector_free(*out);
	*out = NULL;
	return err_set(ERR_INVALID, "invalid label selector object");
}

static int match_one(const req *q, const char *val /* NULL: absent */)
{
	switch (q->op) {
	case OP_EQ:
		return val && strcmp(val, q->vals[0]) == 0;
	case OP_NE:
		return !val || strcmp(val, q->vals[0]) != 0;
	case OP_IN:
		for (int i = 0; val && i < q->n_vals; i++)
			if (strcmp(val, q->vals[i]) == 0)
				return 1;
		return 0;
	case OP_NOTIN:
		for (int i = 0; val && i < q->n_vals; i++)
			if (strcmp(val, q->vals[i]) == 0)
				return 0;
		return 1;
	case OP_EXISTS:
		return val != NULL;
	case OP_NOTEXISTS:
		return val == NULL;
	case OP_GT:
	case OP_LT: {
		if (!val)
			return 0;
		char *e1, *e2;
		long long a = strtoll(val, &e1, 10), b = strtoll(q->vals[0], &e2, 10);
		if (*e1 || *e2)
			return 0;
		return q->op == OP_GT ? a > b : a < b;
	}
	}
	return 0;
}

int ks_selector_match_labels(const ks_selector *s, const cJSON *labels)
{
	if (!s)
		return 1;
	for (int i = 0; i < s->n; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(labels, s->r[i].key);
		if (!match_one(&s->r[i], cJSON_IsString(v) ? v->valuestring : NULL))
			return 0;
	}
	return 1;
}

void ks_field_get(char *out, size_t n, const cJSON *obj, const char *path)
{
	out[0] = 0;
	char seg[128];
	const char *p = path;
	const cJSON *cur = obj;
	while (*p && cur) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (l >= sizeof seg)
			return;
		memcpy(seg, p, l);
		seg[l] = 0;
		cur = cJSON_GetObjectItemCaseSensitive(cur, seg);
		p = dot ? dot + 1 : p + l;
	}
	if (cJSON_IsString(cur))
		snprintf(out, n, "%s", cur->valuestring);
	else if (cJSON_IsNumber(cur))
		snprintf(out, n, "%lld", (long long)cur->valuedouble);
	else if (cJSON_IsBool(cur))
		snprintf(out, n, "%s", cJSON_IsTrue(cur) ? "true" : "false");
}

int ks_selector_match_fields(const ks_selector *s, const cJSON *obj)
{
	if (!s)
		return 1;
	char v[512];
	for (int i = 0; i < s->n; i++) {
		ks_field_get(v, sizeof v, obj, s->r[i].key);
		if (!match_one(&s->r[i], v))
			return 0;
	}
	return 1;
}

const char *ks_selector_key(const ks_selector *s, int i)
{
	if (!s || i < 0 || i >= s->n)
		return NULL;
	return s->r[i].key;
}

int ks_selector_empty(const ks_selector *s) { return !s || s->n == 0; }
