/*
 * result: the run document's JSON encoder and decoder (see result.h).
 *
 * Output strings are encoded with str_json_quote_n, which turns invalid
 * UTF-8 into U+FFFD: the document stays valid JSON whatever a command
 * prints, and stdoutBytes / stdoutSha256 still describe the raw bytes.
 */
#include "runner/result.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

static const char *const phase_names[RUNNER_NPHASES] = {
	"Pending", "Preparing", "Running", "Collecting", "Succeeded", "Failed", "Error", "Cancelled"
};

const char *runner_phase_name(enum runner_phase p)
{
	return (unsigned)p < RUNNER_NPHASES ? phase_names[p] : "Unknown";
}

int runner_phase_parse(enum runner_phase *out, const char *s)
{
	for (int i = 0; i < RUNNER_NPHASES; i++) {
		if (strcmp(s, phase_names[i]) == 0) {
			*out = (enum runner_phase)i;
			return 0;
		}
	}
	return err_set(ERR_INVALID, "unknown phase \"%.40s\"", s);
}

int runner_phase_terminal(enum runner_phase p)
{
	return p >= RUNNER_SUCCEEDED;
}

const char *runner_outcome_name(enum runner_outcome o)
{
	switch (o) {
	case RUNNER_OUTCOME_EXITED: return "exited";
	case RUNNER_OUTCOME_TIMEOUT: return "timeout";
	case RUNNER_OUTCOME_LOST: return "lost";
	case RUNNER_OUTCOME_SKIPPED: return "skipped";
	default: return "pending";
	}
}

static int outcome_parse(enum runner_outcome *out, const char *s)
{
	for (int i = 0; i <= RUNNER_OUTCOME_SKIPPED; i++) {
		if (strcmp(s, runner_outcome_name((enum runner_outcome)i)) == 0) {
			*out = (enum runner_outcome)i;
			return 0;
		}
	}
	return err_set(ERR_INVALID, "unknown command outcome \"%.40s\"", s);
}

runner_run_doc *runner_run_doc_new(void)
{
	runner_run_doc *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->queued_ms = d->pod_ready_ms = d->upload_ms = -1;
	return d;
}

static void cmd_clear(runner_cmd_result *c)
{
	for (size_t i = 0; c->argv && i < c->argc; i++)
		free(c->argv[i]);
	free(c->argv);
	free(c->shell);
	free(c->out);
	free(c->err);
}

void runner_run_doc_free(runner_run_doc *d)
{
	if (!d)
		return;
	free(d->id);
	free(d->reason);
	free(d->message);
	free(d->job_namespace);
	free(d->job_name);
	for (size_t i = 0; i < d->ncmds; i++)
		cmd_clear(&d->cmds[i]);
	free(d->cmds);
	free(d->logs);
	free(d->patch);
	free(d);
}

int runner_doc_set(char **field, const char *s)
{
	char *c = NULL;

	if (s && !(c = str_dup(s)))
		return err_set(ERR_NOMEM, "out of memory");
	free(*field);
	*field = c;
	return 0;
}

/* ---- encoding ---------------------------------------------------------- */

static int enc_str(buf *b, const char *key, const char *v)
{
	int rc = buf_printf(b, "\"%s\":", key);

	return rc ? rc : str_json_quote(b, v ? v : "");
}

static int enc_time(buf *b, const char *key, int64_t ms)
{
	char t[40];

	if (!ms)
		return buf_printf(b, "\"%s\":null", key);
	clock_format_rfc3339(t, sizeof(t), ms, 1);
	return buf_printf(b, "\"%s\":\"%s\"", key, t);
}

static int enc_ms(buf *b, const char *key, int64_t v)
{
	if (v < 0)
		return buf_printf(b, "\"%s\":null", key);
	return buf_printf(b, "\"%s\":%lld", key, (long long)v);
}

int runner_run_doc_encode(buf *b, const runner_run_doc *d, int with_output)
{
	int rc = 0;

#define CK(x) do { if (!rc) rc = (x); } while (0)
	CK(buf_append_byte(b, '{'));
	CK(enc_str(b, "id", d->id));
	CK(buf_printf(b, ",\"phase\":\"%s\",", runner_phase_name(d->phase)));
	CK(enc_str(b, "reason", d->reason));
	CK(buf_append_byte(b, ','));
	CK(enc_str(b, "message", d->message));
	CK(buf_append_byte(b, ','));
	CK(enc_time(b, "createdAt", d->created_ms));
	CK(buf_append_byte(b, ','));
	CK(enc_time(b, "startedAt", d->started_ms));
	CK(buf_append_byte(b, ','));
	CK(enc_time(b, "finishedAt", d->finished_ms));
	if (d->job_name) {
		CK(buf_append_str(b, ",\"job\":{"));
		CK(enc_str(b, "namespace", d->job_namespace));
		CK(buf_append_byte(b, ','));
		CK(enc_str(b, "name", d->job_name));
		CK(buf_append_byte(b, '}'));
	} else {
		CK(buf_append_str(b, ",\"job\":null"));
	}
	CK(buf_append_str(b, ",\"commands\":["));
	for (size_t i = 0; i < d->ncmds; i++) {
		const runner_cmd_result *c = &d->cmds[i];

		CK(buf_append_str(b, i ? ",{" : "{"));
		if (c->argv) {
			CK(buf_append_str(b, "\"argv\":["));
			for (size_t j = 0; j < c->argc; j++) {
				if (j)
					CK(buf_append_byte(b, ','));
				CK(str_json_quote(b, c->argv[j]));
			}
			CK(buf_append_byte(b, ']'));
		} else {
			CK(enc_str(b, "shell", c->shell));
		}
		CK(buf_printf(b, ",\"outcome\":\"%s\"", runner_outcome_name(c->outcome)));
		if (c->outcome == RUNNER_OUTCOME_EXITED)
			CK(buf_printf(b, ",\"exitCode\":%d", c->exit_code));
		else
			CK(buf_append_str(b, ",\"exitCode\":null"));
		CK(buf_printf(b, ",\"durationMs\":%lld", (long long)c->duration_ms));
		if (with_output) {
			CK(buf_append_str(b, ",\"stdout\":"));
			CK(str_json_quote_n(b, c->out ? c->out : "", c->out ? c->out_len : 0));
			CK(buf_append_str(b, ",\"stderr\":"));
			CK(str_json_quote_n(b, c->err ? c->err : "", c->err ? c->err_len : 0));
		}
		CK(buf_printf(b, ",\"stdoutBytes\":%llu,\"stderrBytes\":%llu", (unsigned long long)c->out_bytes,
			      (unsigned long long)c->err_bytes));
		CK(buf_printf(b, ",\"stdoutSha256\":\"%s\",\"stderrSha256\":\"%s\",\"truncated\":%s}", c->out_sha256,
			      c->err_sha256, c->truncated ? "true" : "false"));
	}
	CK(buf_append_byte(b, ']'));
	if (with_output) {
		CK(buf_append_byte(b, ','));
		CK(enc_str(b, "logs", d->logs));
		CK(buf_append_byte(b, ','));
		CK(enc_str(b, "patch", d->patch));
	}
	CK(buf_append_str(b, ",\"timings\":{"));
	CK(enc_ms(b, "queuedMs", d->queued_ms));
	CK(buf_append_byte(b, ','));
	CK(enc_ms(b, "podReadyMs", d->pod_ready_ms));
	CK(buf_append_byte(b, ','));
	CK(enc_ms(b, "uploadMs", d->upload_ms));
	CK(buf_append_str(b, "}}"));
#undef CK
	return rc;
}

/* ---- decoding ---------------------------------------------------------- */

static int dec_str(char **out, const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return err_set(ERR_INVALID, "run document: \"%s\" is not a string", key);
	return runner_doc_set(out, *v->valuestring ? v->valuestring : NULL);
}

static int dec_time(int64_t *out, const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	*out = 0;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v) || clock_parse_rfc3339(out, v->valuestring))
		return err_set(ERR_INVALID, "run document: \"%s\" is not an RFC 3339 time", key);
	return 0;
}

static int dec_num(int64_t *out, const cJSON *obj, const char *key, int64_t dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	*out = dflt;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble) ||
	    fabs(v->valuedouble) > 9e15)
		return err_set(ERR_INVALID, "run document: \"%s\" is not an integer", key);
	*out = (int64_t)v->valuedouble;
	return 0;
}

static int dec_output(char **out, size_t *len, const cJSON *obj, const char *key)
{
	int rc = dec_str(out, obj, key);

	*len = *out ? strlen(*out) : 0;
	return rc;
}

static int dec_sha(char out[65], const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	out[0] = '\0';
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v) || strlen(v->valuestring) > 64)
		return err_set(ERR_INVALID, "run document: \"%s\" is not a sha256", key);
	strcpy(out, v->valuestring);
	return 0;
}

static int dec_cmd(runner_cmd_result *c, const cJSON *o)
{
	const cJSON *v;
	int64_t n;
	int rc;

	if (!cJSON_IsObject(o))
		return err_set(ERR_INVALID, "run document: a command is not an object");
	if ((v = cJSON_GetObjectItemCaseSensitive(o, "argv")) && !cJSON_IsNull(v)) {
		size_t k = 0, i = 0;
		const cJSON *a;

		if (!cJSON_IsArray(v))
			return err_set(ERR_INVALID, "run document: argv is not a list");
		cJSON_ArrayForEach(a, v) k++;
		if (!(c->argv = calloc(k + 1, sizeof(char *))))
			return err_set(ERR_NOMEM, "out of memory");
		cJSON_ArrayForEach(a, v) {
			if (!cJSON_IsString(a))
				return err_set(ERR_INVALID, "run document: argv holds a non-string");
			if (!(c->argv[i++] = str_dup(a->valuestring)))
				return err_set(ERR_NOMEM, "out of memory");
			c->argc = i;
		}
	}
	if ((rc = dec_str(&c->shell, o, "shell")))
		return rc;
	if ((v = cJSON_GetObjectItemCaseSensitive(o, "outcome")) && cJSON_IsString(v) &&
	    (rc = outcome_parse(&c->outcome, v->valuestring)))
		return rc;
	if ((rc = dec_num(&n, o, "exitCode", 0)))
		return rc;
	c->exit_code = (int)(n > 255 || n < -255 ? 255 : n);
	if ((rc = dec_num(&c->duration_ms, o, "durationMs", 0)) || (rc = dec_output(&c->out, &c->out_len, o, "stdout")) ||
	    (rc = dec_output(&c->err, &c->err_len, o, "stderr")))
		return rc;
	if ((rc = dec_num(&n, o, "stdoutBytes", 0)))
		return rc;
	c->out_bytes = n < 0 ? 0 : (uint64_t)n;
	if ((rc = dec_num(&n, o, "stderrBytes", 0)))
		return rc;
	c->err_bytes = n < 0 ? 0 : (uint64_t)n;
	if ((rc = dec_sha(c->out_sha256, o, "stdoutSha256")) || (rc = dec_sha(c->err_sha256, o, "stderrSha256")))
		return rc;
	v = cJSON_GetObjectItemCaseSensitive(o, "truncated");
	c->truncated = cJSON_IsTrue(v);
	return 0;
}

int runner_run_doc_decode(runner_run_doc **out, const char *json, size_t len, size_t max_len)
{
	runner_run_doc *d = NULL;
	cJSON *root = NULL;
	const cJSON *v;
	int rc = 0;

	*out = NULL;
	if (len > max_len)
		return err_set(ERR_TOOBIG, "run document of %zu bytes is over the %zu byte cap", len, max_len);
	root = cJSON_ParseWithLength(json, len);
	if (!root || !cJSON_IsObject(root)) {
		rc = err_set(ERR_INVALID, "run document is not a JSON object");
		goto done;
	}
	if (!(d = runner_run_doc_new())) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto done;
	}
	if ((rc = dec_str(&d->id, root, "id")))
		goto done;
	if (!d->id) {
		rc = err_set(ERR_INVALID, "run document has no id");
		goto done;
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "phase");
	if (!cJSON_IsString(v)) {
		rc = err_set(ERR_INVALID, "run document has no phase");
		goto done;
	}
	if ((rc = runner_phase_parse(&d->phase, v->valuestring)))
		goto done;
	if ((rc = dec_str(&d->reason, root, "reason")) || (rc = dec_str(&d->message, root, "message")) ||
	    (rc = dec_time(&d->created_ms, root, "createdAt")) || (rc = dec_time(&d->started_ms, root, "startedAt")) ||
	    (rc = dec_time(&d->finished_ms, root, "finishedAt")) || (rc = dec_str(&d->logs, root, "logs")) ||
	    (rc = dec_str(&d->patch, root, "patch")))
		goto done;
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "job")) && cJSON_IsObject(v)) {
		if ((rc = dec_str(&d->job_namespace, v, "namespace")) || (rc = dec_str(&d->job_name, v, "name")))
			goto done;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "commands")) && !cJSON_IsNull(v)) {
		const cJSON *c;
		size_t n = 0;

		if (!cJSON_IsArray(v)) {
			rc = err_set(ERR_INVALID, "run document: commands is not a list");
			goto done;
		}
		cJSON_ArrayForEach(c, v) n++;
		if (n && !(d->cmds = calloc(n, sizeof(*d->cmds)))) {
			rc = err_set(ERR_NOMEM, "out of memory");
			goto done;
		}
		cJSON_ArrayForEach(c, v) {
			d->ncmds++;
			if ((rc = dec_cmd(&d->cmds[d->ncmds - 1], c)))
				goto done;
		}
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "timings")) && cJSON_IsObject(v)) {
		if ((rc = dec_num(&d->queued_ms, v, "queuedMs", -1)) || (rc = dec_num(&d->pod_ready_ms, v, "podReadyMs", -1)) ||
		    (rc = dec_num(&d->upload_ms, v, "uploadMs", -1)))
			goto done;
	}
	*out = d;
	d = NULL;
done:
	cJSON_Delete(root);
	runner_run_doc_free(d);
	return rc;
}

int runner_run_doc_exit_status(const runner_run_doc *d)
{
	switch (d->phase) {
	case RUNNER_SUCCEEDED:
		return 0;
	case RUNNER_CANCELLED:
		return RUNNER_EXIT_CANCELLED;
	case RUNNER_FAILED:
		/* The run stops at the first failing command that counts, and the
		 * ones with continueOnError ran before it: so the one to report is
		 * the last command that failed. */
		for (size_t i = d->ncmds; i-- > 0;) {
			const runner_cmd_result *c = &d->cmds[i];

			if (c->outcome == RUNNER_OUTCOME_TIMEOUT)
				return RUNNER_EXIT_TIMEOUT;
			if (c->outcome == RUNNER_OUTCOME_LOST)
				return RUNNER_EXIT_INFRA;
			if (c->outcome == RUNNER_OUTCOME_EXITED && c->exit_code != 0)
				return c->exit_code > 0 && c->exit_code < 256 ? c->exit_code : 1;
		}
		/* Failed without a failing command (e.g. the run deadline) */
		return 1;
	default:
		return RUNNER_EXIT_INFRA;
	}
}
