/*
 * patch: see patch.h. The strategic merge follows k/k
 * staging/src/k8s.io/apimachinery/pkg/util/strategicpatch/patch.go
 * (mergeMap / mergeSlice): maps merge recursively, null deletes, lists of
 * maps with a merge key merge element by element, other lists are
 * replaced, and "merge"-strategy primitive lists (finalizers) are unioned.
 */
#include "kubesim/patch.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"

#define MAX_DEPTH 64

int ks_patch_merge(cJSON **doc, const cJSON *patch)
{
	if (!cJSON_IsObject(patch)) {
		cJSON *c = cJSON_Duplicate(patch, 1);
		if (!c)
			return err_set(ERR_NOMEM, "out of memory");
		cJSON_Delete(*doc);
		*doc = c;
		return 0;
	}
	if (!cJSON_IsObject(*doc)) {
		cJSON_Delete(*doc);
		*doc = cJSON_CreateObject();
	}
	const cJSON *p;
	cJSON_ArrayForEach(p, patch)
	{
		if (cJSON_IsNull(p)) {
			cJSON_DeleteItemFromObjectCaseSensitive(*doc, p->string);
			continue;
		}
		cJSON *cur = cJSON_DetachItemFromObjectCaseSensitive(*doc, p->string);
		if (!cur)
			cur = cJSON_CreateNull();
		int rc = ks_patch_merge(&cur, p);
		if (rc) {
			cJSON_Delete(cur);
			return rc;
		}
		cJSON_AddItemToObject(*doc, p->string, cur);
	}
	return 0;
}

/* ---- strategic merge ---- */

static const struct {
	const char *field;
	const char *key;
} MERGE_KEYS[] = {
	{"containers", "name"}, {"initContainers", "name"}, {"ephemeralContainers", "name"},
	{"env", "name"}, {"volumeMounts", "mountPath"}, {"volumeDevices", "devicePath"},
	{"volumes", "name"}, {"imagePullSecrets", "name"}, {"hostAliases", "ip"},
	{"ownerReferences", "uid"}, {"conditions", "type"}, {"readinessGates", "conditionType"},
	{"topologySpreadConstraints", "topologyKey"}, {"resourceClaims", "name"},
	{"secrets", "name"}, {"containerStatuses", "name"}, {"initContainerStatuses", "name"},
	{"ephemeralContainerStatuses", "name"},
};

/* ports: containerPort in containers, port in services; told apart by
 * what the elements carry. */
static const char *merge_key_for(const char *field, const cJSON *patch_list)
{
	if (!field)
		return NULL;
	if (strcmp(field, "ports") == 0) {
		const cJSON *e = cJSON_GetArrayItem(patch_list, 0);
		if (cJSON_GetObjectItemCaseSensitive(e, "containerPort"))
			return "containerPort";
		return "port";
	}
	for (size_t i = 0; i < sizeof MERGE_KEYS / sizeof MERGE_KEYS[0]; i++)
		if (strcmp(MERGE_KEYS[i].field, field) == 0)
			return MERGE_KEYS[i].key;
	return NULL;
}

static int primitive_merge_list(const char *field)
{
	return field && strcmp(field, "finalizers") == 0;
}

static cJSON *find_by_key(cJSON *list, const char *key, const cJSON *val)
{
	cJSON *e;
	cJSON_ArrayForEach(e, list)
	{
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(e, key);
		if (k && cJSON_Compare(k, val, 1))
			return e;
	}
	return NULL;
}

static int smp_map(cJSON *doc, const cJSON *patch, int depth);

static int smp_value(cJSON **cur, const cJSON *p, const char *field, int depth)
{
	if (depth > MAX_DEPTH)
		return err_set(ERR_INVALID, "patch nests too deeply");
	if (cJSON_IsObject(p)) {
		const cJSON *directive = cJSON_GetObjectItemCaseSensitive(p, "$patch");
		if (cJSON_IsString(directive) && strcmp(directive->valuestring, "replace") == 0) {
			cJSON *c = cJSON_Duplicate(p, 1);
			cJSON_DeleteItemFromObjectCaseSensitive(c, "$patch");
			cJSON_Delete(*cur);
			*cur = c;
			return 0;
		}
		if (!cJSON_IsObject(*cur)) {
			cJSON_Delete(*cur);
			*cur = cJSON_CreateObject();
		}
		return smp_map(*cur, p, depth + 1);
	}
	if (cJSON_IsArray(p)) {
		const char *key = merge_key_for(field, p);
		if (!cJSON_IsArray(*cur) || (!key && !primitive_merge_list(field))) {
			cJSON *c = cJSON_Duplicate(p, 1);
			/* a replaced list may still carry directives: drop $patch elements */
			cJSON_Delete(*cur);
			*cur = c;
			if (key) {
				for (int i = cJSON_GetArraySize(c) - 1; i >= 0; i--) {
					cJSON *e = cJSON_GetArrayItem(c, i);
					if (cJSON_GetObjectItemCaseSensitive(e, "$patch"))
						cJSON_DeleteItemFromArray(c, i);
				}
			}
			return 0;
		}
		if (!key) {
			const cJSON *e;
			cJSON_ArrayForEach(e, p)
			{
				int have = 0;
				const cJSON *x;
				cJSON_ArrayForEach(x, *cur) if (cJSON_Compare(x, e, 1)) have = 1;
				if (!have)
					cJSON_AddItemToArray(*cur, cJSON_Duplicate(e, 1));
			}
			return 0;
		}
		const cJSON *e;
		cJSON_ArrayForEach(e, p)
		{
			if (!cJSON_IsObject(e)) {
				return err_set(ERR_INVALID, "strategic merge patch: element of %s is not an object",
					       field);
			}
			const cJSON *kv = cJSON_GetObjectItemCaseSensitive(e, key);
			const cJSON *directive = cJSON_GetObjectItemCaseSensitive(e, "$patch");
			if (cJSON_IsString(directive) && strcmp(directive->valuestring, "replace") == 0) {
				cJSON *c = cJSON_Duplicate(p, 1);
				for (int i = cJSON_GetArraySize(c) - 1; i >= 0; i--)
					if (cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(c, i), "$patch"))
						cJSON_DeleteItemFromArray(c, i);
				cJSON_Delete(*cur);
				*cur = c;
				return 0;
			}
			if (!kv)
				return err_set(ERR_INVALID, "map: %s does not contain declared merge key: %s",
					       "element", key);
			cJSON *existing = find_by_key(*cur, key, kv);
			if (cJSON_IsString(directive) && strcmp(directive->valuestring, "delete") == 0) {
				if (existing) {
					int idx = 0;
					cJSON *x;
					cJSON_ArrayForEach(x, *cur)
					{
						if (x == existing)
							break;
						idx++;
					}
					cJSON_DeleteItemFromArray(*cur, idx);
				}
				continue;
			}
			if (existing) {
				int rc = smp_map(existing, e, depth + 1);
				if (rc)
					return rc;
			} else {
				cJSON *n = cJSON_CreateObject();
				int rc = smp_map(n, e, depth + 1);
				if (rc) {
					cJSON_Delete(n);
					return rc;
				}
				cJSON_AddItemToArray(*cur, n);
			}
		}
		return 0;
	}
	cJSON *c = cJSON_Duplicate(p, 1);
	cJSON_Delete(*cur);
	*cur = c;
	return 0;
}

static int smp_map(cJSON *doc, const cJSON *patch, int depth)
{
	if (depth > MAX_DEPTH)
		return err_set(ERR_INVALID, "patch nests too deeply");
	const cJSON *directive = cJSON_GetObjectItemCaseSensitive(patch, "$patch");
	if (cJSON_IsString(directive) && strcmp(directive->valuestring, "delete") == 0) {
		while (doc->child)
			cJSON_DeleteItemFromArray(doc, 0);
		return 0;
	}
	const cJSON *p;
	cJSON_ArrayForEach(p, patch)
	{
		const char *k = p->string;
		if (strcmp(k, "$patch") == 0 || strcmp(k, "$retainKeys") == 0 ||
		    strncmp(k, "$setElementOrder/", 17) == 0)
			continue;
		if (strncmp(k, "$deleteFromPrimitiveList/", 25) == 0) {
			cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, k + 25);
			const cJSON *v;
			cJSON_ArrayForEach(v, p)
			{
				for (int i = cJSON_GetArraySize(list) - 1; i >= 0; i--)
					if (cJSON_Compare(cJSON_GetArrayItem(list, i), v, 1))
						cJSON_DeleteItemFromArray(list, i);
			}
			continue;
		}
		if (k[0] == '$')
			return err_set(ERR_INVALID, "unknown patch directive %s", k);
		if (cJSON_IsNull(p)) {
			cJSON_DeleteItemFromObjectCaseSensitive(doc, k);
			continue;
		}
		cJSON *cur = cJSON_DetachItemFromObjectCaseSensitive(doc, k);
		if (!cur)
			cur = cJSON_CreateNull();
		int rc = smp_value(&cur, p, k, depth);
		if (rc) {
			cJSON_Delete(cur);
			return rc;
		}
		cJSON_AddItemToObject(doc, k, cur);
	}
	const cJSON *retain = cJSON_GetObjectItemCaseSensitive(patch, "$retainKeys");
	if (cJSON_IsArray(retain)) {
		cJSON *c = doc->child;
		while (c) {
			cJSON *next = c->next;
			int keep = 0;
			const cJSON *r;
			cJSON_ArrayForEach(r, retain) if (cJSON_IsString(r) && strcmp(r->valuestring, c->string) == 0) keep = 1;
			if (!keep)
				cJSON_Delete(cJSON_DetachItemViaPointer(doc, c));
			c = next;
		}
	}
	return 0;
}

int ks_patch_strategic(cJSON **doc, const cJSON *patch)
{
	if (!cJSON_IsObject(patch))
		return err_set(ERR_INVALID, "strategic merge patch must be a JSON object");
	if (!cJSON_IsObject(*doc)) {
		cJSON_Delete(*doc);
		*doc = cJSON_CreateObject();
	}
	return smp_map(*doc, patch, 0);
}

/* ---- JSON patch (RFC 6902) with JSON pointers (RFC 6901) ---- */

/* Decode one reference token (~1 -> /, ~0 -> ~) into out. */
static int token_at(char *out, size_t n, const char **p)
{
	size_t len = 0;
	const char *s = *p;
	while (*s && *s != '/') {
		char c = *s++;
		if (c == '~') {
			if (*s == '0')
				c = '~';
			else if (*s == '1')
				c = '/';
			else
				return err_set(ERR_INVALID, "invalid JSON pointer escape");
			s++;
		}
		if (len + 1 >= n)
			return err_set(ERR_INVALID, "JSON pointer token too long");
		out[len++] = c;
	}
	out[len] = 0;
	*p = s;
	return 0;
}

static int parse_index(const char *t, int size, int allow_end, int *out)
{
	if (allow_end && strcmp(t, "-") == 0) {
		*out = size;
		return 0;
	}
	if (!t[0] || (t[0] == '0' && t[1]))
		return -1;
	long v = 0;
	for (const char *c = t; *c; c++) {
		if (*c < '0' || *c > '9')
			return -1;
		v = v * 10 + (*c - '0');
		if (v > 1000000)
			return -1;
	}
	if (v > size || (!allow_end && v >= size))
		return -1;
	*out = (int)v;
	return 0;
}

/* Find the parent container of path and the last token. */
static int resolve_parent(cJSON *doc, const char *path, cJSON **parent, char *last, size_t n)
{
	if (path[0] != '/')
		return err_set(ERR_INVALID, "JSON pointer must start with '/': %.100s", path);
	const char *p = path + 1;
	cJSON *cur = doc;
	char tok[512];
	for (;;) {
		if (token_at(tok, sizeof tok, &p))
			return ERR_INVALID;
		if (!*p) {
			*parent = cur;
			snprintf(last, n, "%s", tok);
			return 0;
		}
		p++;
		if (cJSON_IsArray(cur)) {
			int idx;
			if (parse_index(tok, cJSON_GetArraySize(cur), 0, &idx))
				return err_set(ERR_INVALID, "invalid array index in path %.100s", path);
			cur = cJSON_GetArrayItem(cur, idx);
		} else if (cJSON_IsObject(cur)) {
			cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
		} else {
			cur = NULL;
		}
		if (!cur)
			return err_set(ERR_INVALID, "doc is missing path: %.100s", path);
	}
}

static cJSON *get_at(cJSON *doc, const char *path)
{
	if (!path[0])
		return doc;
	cJSON *parent;
	char last[512];
	if (resolve_parent(doc, path, &parent, last, sizeof last))
		return NULL;
	if (cJSON_IsArray(parent)) {
		int idx;
		if (parse_index(last, cJSON_GetArraySize(parent), 0, &idx))
			return NULL;
		return cJSON_GetArrayItem(parent, idx);
	}
	return cJSON_IsObject(parent) ? cJSON_GetObjectItemCaseSensitive(parent, last) : NULL;
}

static int op_remove(cJSON *doc, const char *path, cJSON **removed)
{
	cJSON *parent;
	char last[512];
	int rc = resolve_parent(doc, path, &parent, last, sizeof last);
	if (rc)
		return rc;
	cJSON *item = NULL;
	if (cJSON_IsArray(parent)) {
		int idx;
		if (parse_index(last, cJSON_GetArraySize(parent), 0, &idx) == 0)
			item = cJSON_DetachItemFromArray(parent, idx);
	} else if (cJSON_IsObject(parent)) {
		item = cJSON_DetachItemFromObjectCaseSensitive(parent, last);
	}
	if (!item)
		return err_set(ERR_INVALID, "unable to remove nonexistent key: %.100s", path);
	if (removed)
		*removed = item;
	else
		cJSON_Delete(item);
	return 0;
}

/* Insert val (owned) before element idx. Not cJSON_InsertItemInArray:
 * Debian's cJSON 1.7.15-1+deb12u4 loses the item when inserting in the
 * middle of an array (found by fuzz_kubesim_request: [1,2] + add /1 leaked
 * the value and came out as [1,2]). */
static void array_insert(cJSON *arr, int idx, cJSON *val)
{
	cJSON *tail = cJSON_CreateArray();

	if (!tail) {
		cJSON_Delete(val);
		return;
	}
	while (cJSON_GetArraySize(arr) > idx)
		cJSON_AddItemToArray(tail, cJSON_DetachItemFromArray(arr, idx));
	cJSON_AddItemToArray(arr, val);
	while (cJSON_GetArraySize(tail) > 0)
		cJSON_AddItemToArray(arr, cJSON_DetachItemFromArray(tail, 0));
	cJSON_Delete(tail);
}

static int op_add(cJSON **doc, const char *path, cJSON *val /* owned */, int replace)
{
	if (!path[0]) {
		cJSON_Delete(*doc);
		*doc = val;
		return 0;
	}
	cJSON *parent;
	char last[512];
	int rc = resolve_parent(*doc, path, &parent, last, sizeof last);
	if (rc) {
		cJSON_Delete(val);
		return rc;
	}
	if (cJSON_IsArray(parent)) {
		int idx;
		if (parse_index(last, cJSON_GetArraySize(parent), !replace, &idx)) {
			cJSON_Delete(val);
			return err_set(ERR_INVALID, "invalid array index in path %.100s", path);
		}
		if (replace) {
			cJSON_ReplaceItemInArray(parent, idx, val);
		} else if (idx == cJSON_GetArraySize(parent)) {
			cJSON_AddItemToArray(parent, val);
		} else {
			array_insert(parent, idx, val);
		}
		return 0;
	}
	if (!cJSON_IsObject(parent)) {
		cJSON_Delete(val);
		return err_set(ERR_INVALID, "doc is missing path: %.100s", path);
	}
	if (replace && !cJSON_GetObjectItemCaseSensitive(parent, last)) {
		cJSON_Delete(val);
		return err_set(ERR_INVALID, "replace operation does not apply: doc is missing key: %.100s", path);
	}
	cJSON_DeleteItemFromObjectCaseSensitive(parent, last);
	cJSON_AddItemToObject(parent, last, val);
	return 0;
}

int ks_patch_json(cJSON **doc, const cJSON *ops)
{
	if (!cJSON_IsArray(ops))
		return err_set(ERR_INVALID, "json patch must be an array of operations");
	const cJSON *op;
	cJSON_ArrayForEach(op, ops)
	{
		const cJSON *jo = cJSON_GetObjectItemCaseSensitive(op, "op");
		const cJSON *jp = cJSON_GetObjectItemCaseSensitive(op, "path");
		const cJSON *jv = cJSON_GetObjectItemCaseSensitive(op, "value");
		const cJSON *jf = cJSON_GetObjectItemCaseSensitive(op, "from");
		if (!cJSON_IsString(jo) || !cJSON_IsString(jp))
			return err_set(ERR_INVALID, "json patch operation needs string op and path");
		const char *o = jo->valuestring, *path = jp->valuestring;
		int rc;
		if (strcmp(o, "add") == 0 || strcmp(o, "replace") == 0) {
			if (!jv)
				return err_set(ERR_INVALID, "%s operation needs a value", o);
			rc = op_add(doc, path, cJSON_Duplicate(jv, 1), o[0] == 'r');
		} else if (strcmp(o, "remove") == 0) {
			rc = op_remove(*doc, path, NULL);
		} else if (strcmp(o, "move") == 0 || strcmp(o, "copy") == 0) {
			if (!cJSON_IsString(jf))
				return err_set(ERR_INVALID, "%s operation needs from", o);
			cJSON *v = NULL;
			if (o[0] == 'm') {
				if (strncmp(path, jf->valuestring, strlen(jf->valuestring)) == 0 &&
				    path[strlen(jf->valuestring)] == '/')
					return err_set(ERR_INVALID, "move into its own child");
				rc = op_remove(*doc, jf->valuestring, &v);
			} else {
				cJSON *src = get_at(*doc, jf->valuestring);
				rc = src ? 0 : err_set(ERR_INVALID, "copy from missing path %.100s", jf->valuestring);
				if (!rc)
					v = cJSON_Duplicate(src, 1);
			}
			if (!rc)
				rc = op_add(doc, path, v, 0);
		} else if (strcmp(o, "test") == 0) {
			cJSON *cur = get_at(*doc, path);
			rc = (cur && jv && cJSON_Compare(cur, jv, 1)) ? 0
				: err_set(ERR_CONFLICT, "testing value %.100s failed", path);
		} else {
			return err_set(ERR_INVALID, "Unexpected kind: %.40s", o);
		}
		if (rc)
			return rc;
	}
	return 0;
}
