/* kube/status: metav1.Status parsing and error mapping. See status.h. */
#include "kube/status.h"

#include <stdio.h>
#include <string.h>

#include "util/err.h"
#include "util/str.h"

static _Thread_local kube_status last_status;
static _Thread_local int have_last;

static void copy_field(char *dst, size_t size, const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	dst[0] = '\0';
	if (cJSON_IsString(v))
		str_copy(dst, size, v->valuestring);
}

int kube_status_from_json(kube_status *out, const cJSON *obj)
{
	memset(out, 0, sizeof(*out));
	if (!cJSON_IsObject(obj))
		return err_set(ERR_INVALID, "Status is not a JSON object");
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(obj, "kind");
	out->is_status = cJSON_IsString(kind) && !strcmp(kind->valuestring, "Status");
	copy_field(out->status, sizeof(out->status), obj, "status");
	copy_field(out->reason, sizeof(out->reason), obj, "reason");
	copy_field(out->message, sizeof(out->message), obj, "message");
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
	if (cJSON_IsNumber(code) && code->valuedouble >= 0 && code->valuedouble < 1000)
		out->code = (long)code->valuedouble;
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(obj, "details");
	if (cJSON_IsObject(d)) {
		copy_field(out->kind, sizeof(out->kind), d, "kind");
		copy_field(out->name, sizeof(out->name), d, "name");
		copy_field(out->group, sizeof(out->group), d, "group");
		const cJSON *ra = cJSON_GetObjectItemCaseSensitive(d, "retryAfterSeconds");
		if (cJSON_IsNumber(ra) && ra->valuedouble > 0 && ra->valuedouble < 86400)
			out->retry_after_seconds = (int)ra->valuedouble;
		const cJSON *causes = cJSON_GetObjectItemCaseSensitive(d, "causes");
		if (cJSON_IsArray(causes)) {
			for (const cJSON *c = causes->child; c && out->ncauses < KUBE_STATUS_CAUSES_MAX;
			     c = c->next) {
				if (!cJSON_IsObject(c))
					continue;
				kube_status_cause *k = &out->causes[out->ncauses++];
				/* CauseType is serialised as "reason" (types.go StatusCause). */
				copy_field(k->reason, sizeof(k->reason), c, "reason");
				copy_field(k->field, sizeof(k->field), c, "field");
				copy_field(k->message, sizeof(k->message), c, "message");
			}
		}
	}
	return 0;
}

/* client-go's reason for a bare HTTP status
 * (s/apimachinery/pkg/api/errors/errors.go NewGenericServerResponse). */
static const char *reason_for_code(long code)
{
	switch (code) {
	case 400: return "BadRequest";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "NotFound";
	case 405: return "MethodNotAllowed";
	case 406: return "NotAcceptable";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 413: return "RequestEntityTooLarge";
	case 415: return "UnsupportedMediaType";
	case 422: return "Invalid";
	case 429: return "TooManyRequests";
	case 500: return "InternalError";
	case 503: return "ServiceUnavailable";
	case 504: return "Timeout";
	default: return "";
	}
}

void kube_status_from_body(kube_status *out, long http_code, const char *body, size_t len)
{
	cJSON *j = NULL;

	memset(out, 0, sizeof(*out));
	if (body && len > 0 && len < (8u << 20) && (j = cJSON_ParseWithLength(body, len)) &&
	    cJSON_IsObject(j)) {
		kube_status_from_json(out, j);
		cJSON_Delete(j);
		if (out->code == 0)
			out->code = http_code;
		if (!out->reason[0])
			str_copy(out->reason, sizeof(out->reason), reason_for_code(out->code));
		return;
	}
	cJSON_Delete(j);
	out->code = http_code;
	str_copy(out->status, sizeof(out->status), "Failure");
	str_copy(out->reason, sizeof(out->reason), reason_for_code(http_code));
	/* A plain-text body is the message: trimmed, one line, printable. */
	size_t s = 0, e = body ? len : 0, o = 0;
	while (s < e && (body[s] == ' ' || body[s] == '\n' || body[s] == '\r' || body[s] == '\t'))
		s++;
	while (e > s && (body[e - 1] == ' ' || body[e - 1] == '\n' || body[e - 1] == '\r' ||
			 body[e - 1] == '\t'))
		e--;
	for (size_t i = s; i < e && o + 1 < sizeof(out->message); i++) {
		unsigned char ch = (unsigned char)body[i];
		out->message[o++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	out->message[o] = '\0';
}

int kube_status_err_code(const kube_status *st)
{
	static const struct { const char *reason; int code; } by_reason[] = {
		{ "NotFound", ERR_NOTFOUND },       { "AlreadyExists", ERR_CONFLICT },
		{ "Conflict", ERR_CONFLICT },       { "Forbidden", ERR_FORBIDDEN },
		{ "Unauthorized", ERR_UNAUTHORIZED }, { "Expired", ERR_GONE },
		{ "Gone", ERR_GONE },               { "BadRequest", ERR_INVALID },
		{ "Invalid", ERR_INVALID },         { "MethodNotAllowed", ERR_INVALID },
		{ "UnsupportedMediaType", ERR_INVALID }, { "NotAcceptable", ERR_INVALID },
		{ "RequestEntityTooLarge", ERR_TOOBIG }, { "TooManyRequests", ERR_AGAIN },
		{ "ServiceUnavailable", ERR_AGAIN }, { "InternalError", ERR_AGAIN },
		{ "ServerTimeout", ERR_AGAIN },     { "Timeout", ERR_AGAIN },
	};
	for (size_t i = 0; i < sizeof(by_reason) / sizeof(by_reason[0]); i++)
		if (!strcmp(st->reason, by_reason[i].reason))
			return by_reason[i].code;
	switch (st->code) {
	case 404: return ERR_NOTFOUND;
	case 409: return ERR_CONFLICT;
	case 403: return ERR_FORBIDDEN;
	case 401: return ERR_UNAUTHORIZED;
	case 410: return ERR_GONE;
	case 400: case 405: case 406: case 415: case 422: return ERR_INVALID;
	case 413: return ERR_TOOBIG;
	case 429: return ERR_AGAIN;
	default: return st->code >= 500 && st->code < 600 ? ERR_AGAIN : ERR_FAIL;
	}
}

int kube_status_err(const kube_status *st, const char *what)
{
	char causes[1536];
	size_t o = 0;
	const char *hint = "";
	int code = kube_status_err_code(st);

	causes[0] = '\0';
	for (size_t i = 0; i < st->ncauses && o < sizeof(causes) - 1; i++) {
		const kube_status_cause *c = &st->causes[i];
		int n = snprintf(causes + o, sizeof(causes) - o, "%s%s%s%s", i ? "; " : ": ",
				 c->field, c->field[0] ? ": " : "",
				 c->message[0] ? c->message : c->reason);
		if (n < 0)
			break;
		o += (size_t)n;
		if (o >= sizeof(causes))
			o = sizeof(causes) - 1;
	}
	if (code == ERR_UNAUTHORIZED)
		hint = "; the credentials were rejected: check the token, its expiry, or the "
		       "kubeconfig user";
	else if (code == ERR_FORBIDDEN)
		hint = "; the identity lacks an RBAC permission: see `ci-fixer verify-rbac`";
	else if (st->code == 429)
		hint = "; the API server is overloaded: retry later";
	err_set(code, "%s: %s (%s, HTTP %ld)%s%s", what ? what : "request",
		st->message[0] ? st->message : "the API server gave no message",
		st->reason[0] ? st->reason : "no reason", st->code, causes, hint);
	return code;
}

const kube_status *kube_status_last(void)
{
	return have_last ? &last_status : NULL;
}

void kube_status_set_last(const kube_status *st)
{
	if (st) {
		last_status = *st;
		have_last = 1;
	} else {
		have_last = 0;
	}
}
