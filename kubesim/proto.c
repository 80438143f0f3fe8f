/*
 * proto: see proto.h. Decoding is driven by the generated field tables
 * (proto_schema.c). JSON shapes follow the Go types' json tags: a few
 * messages have a JSON form of their own (Time and MicroTime are RFC 3339
 * strings, Quantity a string, IntOrString a number or a string,
 * RawExtension embedded JSON), map fields are repeated key/value entries,
 * bytes are base64, inline fields merge into their parent, and empty
 * singular strings and zero times are dropped (gogo-protobuf writes every
 * non-pointer field; JSON's omitempty drops them).
 * Nesting depth and repetition are bounded by the body cap.
 */
#include "kubesim/proto.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubesim/proto_schema.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

#define MAX_DEPTH 32

typedef struct rd {
	const uint8_t *p, *end;
} rd;

static int varint(rd *r, uint64_t *out)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			return -1;
		uint8_t b = *r->p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

static int next_field(rd *r, int *num, int *wt, uint64_t *val, rd *sub)
{
	uint64_t key;
	if (varint(r, &key))
		return -1;
	if ((key >> 3) == 0 || (key >> 3) > (1u << 29))
		return -1;
	*num = (int)(key >> 3);
	*wt = (int)(key & 7);
	switch (*wt) {
	case 0:
		return varint(r, val);
	case 1:
		if (r->end - r->p < 8)
			return -1;
		memcpy(val, r->p, 8);
		r->p += 8;
		return 0;
	case 5: {
		if (r->end - r->p < 4)
			return -1;
		uint32_t v32;
		memcpy(&v32, r->p, 4);
		*val = v32;
		r->p += 4;
		return 0;
	}
	case 2: {
		uint64_t len;
		if (varint(r, &len) || len > (uint64_t)(r->end - r->p))
			return -1;
		sub->p = r->p;
		sub->end = r->p + len;
		r->p += len;
		return 0;
	}
	default:
		return -1;
	}
}

static char *dup_bytes(rd s)
{
	size_t n = (size_t)(s.end - s.p);
	char *c = malloc(n + 1);
	if (!c)
		return NULL;
	memcpy(c, s.p, n);
	c[n] = 0;
	return c;
}

static int is_msg(int m, const char *suffix)
{
	const char *n = ks_pmsgs[m].name;
	size_t ln = strlen(n), ls = strlen(suffix);
	return ln >= ls && strcmp(n + ln - ls, suffix) == 0;
}

static int decode_into(cJSON *out, rd r, int m, int depth);

/* Decode a message-typed value to a JSON item (NULL: drop it). */
static cJSON *decode_value_msg(rd sub, int m, int depth, int *bad)
{
	if (is_msg(m, "apis.meta.v1.Time") || is_msg(m, "apis.meta.v1.MicroTime")) {
		int64_t secs = 0, nanos = 0;
		rd r = sub;
		while (r.p < r.end) {
			int num, wt;
			uint64_t v = 0;
			rd s2;
			if (next_field(&r, &num, &wt, &v, &s2)) {
				*bad = 1;
				return NULL;
			}
			if (num == 1 && wt == 0)
				secs = (int64_t)v;
			else if (num == 2 && wt == 0)
				nanos = (int64_t)v;
		}
		if (secs == 0 && nanos == 0)
			return NULL;
		char ts[40];
		clock_format_rfc3339(ts, sizeof ts, secs * 1000 + nanos / 1000000, is_msg(m, "MicroTime"));
		return cJSON_CreateString(ts);
	}
	if (is_msg(m, "api.resource.Quantity") || is_msg(m, "runtime.RawExtension")) {
		rd r = sub;
		char *s = NULL;
		while (r.p < r.end) {
			int num, wt;
			uint64_t v = 0;
			rd s2;
			if (next_field(&r, &num, &wt, &v, &s2)) {
				free(s);
				*bad = 1;
				return NULL;
			}
			if (num == 1 && wt == 2) {
				free(s);
				s = dup_bytes(s2);
			}
		}
		if (!s)
			return NULL;
		cJSON *o = is_msg(m, "Quantity") ? cJSON_CreateString(s) : cJSON_Parse(s);
		free(s);
		return o;
	}
	if (is_msg(m, "util.intstr.IntOrString")) {
		int64_t type = 0, iv = 0;
		char *sv = NULL;
		rd r = sub;
		while (r.p < r.end) {
			int num, wt;
			uint64_t v = 0;
			rd s2;
			if (next_field(&r, &num, &wt, &v, &s2)) {
				free(sv);
				*bad = 1;
				return NULL;
			}
			if (num == 1 && wt == 0)
				type = (int64_t)v;
			else if (num == 2 && wt == 0)
				iv = (int32_t)v;
			else if (num == 3 && wt == 2) {
				free(sv);
				sv = dup_bytes(s2);
			}
		}
		cJSON *o = type == 1 ? cJSON_CreateString(sv ? sv : "") : cJSON_CreateNumber((double)iv);
		free(sv);
		return o;
	}
	cJSON *o = cJSON_CreateObject();
	if (decode_into(o, sub, m, depth + 1)) {
		cJSON_Delete(o);
		*bad = 1;
		return NULL;
	}
	return o;
}

/* map entry message: nested "...Entry" with key=1 and value=2 */
static int is_map_entry(int m)
{
	const ks_pfield *f = ks_pmsgs[m].fields;
	return is_msg(m, "Entry") && f[0].num == 1 && strcmp(f[0].name, "key") == 0 && f[1].num == 2 &&
	       strcmp(f[1].name, "value") == 0 && f[2].name == NULL && strchr(strrchr(ks_pmsgs[m].name, '.') ? ks_pmsgs[m].name : "", '.');
}

static cJSON *scalar(const ks_pfield *f, int wt, uint64_t v, rd sub, int *bad)
{
	switch (f->type) {
	case PT_STRING: {
		if (wt != 2)
			break;
		char *s = dup_bytes(sub);
		if (!s)
			break;
		cJSON *o = cJSON_CreateString(s);
		free(s);
		return o;
	}
	case PT_BYTES: {
		if (wt != 2)
			break;
		buf b = BUF_INIT(8u * 1024 * 1024);
		str_base64_encode(&b, sub.p, (size_t)(sub.end - sub.p));
		cJSON *o = cJSON_CreateString(buf_cstr(&b));
		buf_free(&b);
		return o;
	}
	case PT_INT:
		if (wt != 0)
			break;
		return cJSON_CreateNumber((double)(int64_t)v);
	case PT_UINT:
		if (wt != 0)
			break;
		return cJSON_CreateNumber((double)v);
	case PT_BOOL:
		if (wt != 0)
			break;
		return cJSON_CreateBool(v != 0);
	case PT_DOUBLE: {
		if (wt != 1)
			break;
		double d;
		memcpy(&d, &v, 8);
		return cJSON_CreateNumber(d);
	}
	case PT_FLOAT: {
		if (wt != 5)
			break;
		uint32_t u = (uint32_t)v;
		float fl;
		memcpy(&fl, &u, 4);
		return cJSON_CreateNumber(fl);
	}
	default:
		return NULL;
	}
	*bad = 1;
	return NULL;
}

static int decode_into(cJSON *out, rd r, int m, int depth)
{
	if (depth > MAX_DEPTH)
		return -1;
	while (r.p < r.end) {
		int num, wt;
		uint64_t v = 0;
		rd sub = {NULL, NULL};
		if (next_field(&r, &num, &wt, &v, &sub))
			return -1;
		const ks_pfield *f = ks_pmsgs[m].fields;
		while (f->name && f->num != num)
			f++;
		if (!f->name || f->type == PT_SKIP)
			continue;
		int bad = 0;
		if (f->type == PT_MSG) {
			if (wt != 2 || f->msg < 0)
				return -1;
			if (is_map_entry(f->msg)) {
				cJSON *obj = cJSON_GetObjectItemCaseSensitive(out, f->name);
				if (!obj)
					obj = cJSON_AddObjectToObject(out, f->name);
				char *key = NULL;
				cJSON *val = NULL;
				rd er = sub;
				const ks_pfield *vf = &ks_pmsgs[f->msg].fields[1];
				while (er.p < er.end) {
					int n2, w2;
					uint64_t v2 = 0;
					rd s2 = {NULL, NULL};
					if (next_field(&er, &n2, &w2, &v2, &s2)) {
						bad = 1;
						break;
					}
					if (n2 == 1 && w2 == 2) {
						free(key);
						key = dup_bytes(s2);
					} else if (n2 == 2) {
						cJSON_Delete(val);
						val = vf->type == PT_MSG ? decode_value_msg(s2, vf->msg, depth, &bad)
									 : scalar(vf, w2, v2, s2, &bad);
					}
				}
				if (!val && !bad)
					val = vf->type == PT_STRING ? cJSON_CreateString("") : cJSON_CreateNull();
				if (bad || !key) {
					free(key);
					cJSON_Delete(val);
					if (bad)
						return -1;
					continue;
				}
				cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
				cJSON_AddItemToObject(obj, key, val);
				free(key);
				continue;
			}
			cJSON *val = decode_value_msg(sub, f->msg, depth, &bad);
			if (bad)
				return -1;
			if (!val)
				continue;
			if (f->flags & PF_INLINE) {
				cJSON *c;
				while ((c = val->child)) {
					cJSON_DetachItemViaPointer(val, c);
					cJSON_DeleteItemFromObjectCaseSensitive(out, c->string);
					cJSON_AddItemToObject(out, c->string, c);
				}
				cJSON_Delete(val);
				continue;
			}
			if (f->flags & PF_REPEATED) {
				cJSON *a = cJSON_GetObjectItemCaseSensitive(out, f->name);
				if (!a)
					a = cJSON_AddArrayToObject(out, f->name);
				cJSON_AddItemToArray(a, val);
			} else {
				cJSON_DeleteItemFromObjectCaseSensitive(out, f->name);
				cJSON_AddItemToObject(out, f->name, val);
			}
			continue;
		}
		if ((f->flags & PF_REPEATED) && wt == 2 && f->type != PT_STRING && f->type != PT_BYTES) {
			/* packed repeated scalars */
			cJSON *a = cJSON_GetObjectItemCaseSensitive(out, f->name);
			if (!a)
				a = cJSON_AddArrayToObject(out, f->name);
			rd pr = sub;
			while (pr.p < pr.end) {
				uint64_t x;
				if (varint(&pr, &x))
					return -1;
				cJSON *e = scalar(f, 0, x, sub, &bad);
				if (bad)
					return -1;
				cJSON_AddItemToArray(a, e);
			}
			continue;
		}
		cJSON *val = scalar(f, wt, v, sub, &bad);
		if (bad)
			return -1;
		if (!val)
			continue;
		if (f->flags & PF_REPEATED) {
			cJSON *a = cJSON_GetObjectItemCaseSensitive(out, f->name);
			if (!a)
				a = cJSON_AddArrayToObject(out, f->name);
			cJSON_AddItemToArray(a, val);
			continue;
		}
		if (cJSON_IsString(val) && !val->valuestring[0]) {
			cJSON_Delete(val);
			continue;
		}
		cJSON_DeleteItemFromObjectCaseSensitive(out, f->name);
		cJSON_AddItemToObject(out, f->name, val);
	}
	return 0;
}

/* apiVersion + kind -> the protobuf message (k8s.io.api.<group label>.<version>.<Kind>) */
static int find_msg(const char *api_version, const char *kind)
{
	char pkg[400];
	const char *slash = strchr(api_version, '/');
	if (strcmp(kind, "DeleteOptions") == 0)
		snprintf(pkg, sizeof pkg, "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions");
	else if (!slash)
		snprintf(pkg, sizeof pkg, "k8s.io.api.core.%s.%s", api_version, kind);
	else {
		size_t gl = strcspn(api_version, "./");
		snprintf(pkg, sizeof pkg, "k8s.io.api.%.*s.%s.%s", (int)gl, api_version, slash + 1, kind);
	}
	for (int i = 0; i < ks_n_pmsgs; i++)
		if (strcmp(ks_pmsgs[i].name, pkg) == 0)
			return i;
	return -1;
}

int ks_proto_decode(cJSON **out, const void *body, size_t len)
{
	*out = NULL;
	const uint8_t *b = body;
	if (len < 4 || memcmp(b, "k8s\0", 4) != 0)
		return err_set(ERR_INVALID, "provided object is not a Kubernetes protobuf message (missing the k8s magic)");
	rd r = {b + 4, b + len};
	char api_version[128] = "", kind[128] = "";
	rd raw = {NULL, NULL};
	while (r.p < r.end) {
		int num, wt;
		uint64_t val;
		rd sub = {NULL, NULL};
		if (next_field(&r, &num, &wt, &val, &sub))
			return err_set(ERR_INVALID, "malformed protobuf envelope");
		if (num == 1 && wt == 2) {
			rd t = sub;
			while (t.p < t.end) {
				int n2, w2;
				uint64_t v2;
				rd s2 = {NULL, NULL};
				if (next_field(&t, &n2, &w2, &v2, &s2))
					return err_set(ERR_INVALID, "malformed protobuf type meta");
				size_t l = (size_t)(s2.end - s2.p);
				if (w2 == 2 && n2 == 1 && l < sizeof api_version) {
					memcpy(api_version, s2.p, l);
					api_version[l] = 0;
				} else if (w2 == 2 && n2 == 2 && l < sizeof kind) {
					memcpy(kind, s2.p, l);
					kind[l] = 0;
				}
			}
		} else if (num == 2 && wt == 2) {
			raw = sub;
		}
	}
	if (memchr(kind, 0, strlen(kind)) || !kind[0])
		return err_set(ERR_INVALID, "protobuf envelope without a kind");
	int m = find_msg(api_version, kind);
	if (m < 0)
		return err_set(ERR_INVALID, "no protobuf decoding in kubesim for %.60s %.60s; send JSON", api_version, kind);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "kind", kind);
	cJSON_AddStringToObject(o, "apiVersion", api_version);
	if (raw.p && decode_into(o, raw, m, 0)) {
		cJSON_Delete(o);
		return err_set(ERR_INVALID, "malformed protobuf %s", kind);
	}
	*out = o;
	return 0;
}
