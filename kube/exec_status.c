/*
 * kube/exec_status: parse the Status that ends an exec stream. See
 * exec_status.h for the wire shape and the upstream sources it follows.
 */
#include "kube/exec_status.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "util/err.h"
#include "util/str.h"

static void status_init(kube_exec_status *out)
{
	memset(out, 0, sizeof(*out));
	out->outcome = KUBE_EXEC_FAILED;
	out->exit_code = -1;
}

/* Copy a JSON string member into dst (cut to fit); absent or not a string
 * leaves dst empty. */
static void copy_member(char *dst, size_t size, const cJSON *obj, const char *name)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (cJSON_IsString(it) && it->valuestring)
		(void)str_copy(dst, size, it->valuestring);
}

static int parse_object(cJSON **out, const void *json, size_t len)
{
	cJSON *root;

	*out = NULL;
	if (len > KUBE_EXEC_STATUS_MAX)
		return err_set(ERR_TOOBIG, "error stream protocol error: status of %zu bytes is over the %u-byte cap",
			       len, KUBE_EXEC_STATUS_MAX);
	if (len == 0)
		return err_set(ERR_INVALID, "error stream protocol error: empty status");
	root = cJSON_ParseWithLength((const char *)json, len);
	if (!root)
		return err_set(ERR_INVALID, "error stream protocol error: status is not valid JSON");
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return err_set(ERR_INVALID, "error stream protocol error: status is not a JSON object");
	}
	*out = root;
	return 0;
}

static void fill_common(kube_exec_status *out, const cJSON *root)
{
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(root, "code");

	copy_member(out->status, sizeof(out->status), root, "status");
	copy_member(out->reason, sizeof(out->reason), root, "reason");
	copy_member(out->message, sizeof(out->message), root, "message");
	if (cJSON_IsNumber(code) && code->valuedouble >= 0 && code->valuedouble <= 999)
		out->code = (int)code->valuedouble;
}

/* strconv.ParseUint(s, 10, 8): decimal digits only (leading zeros
 * allowed, no sign, no spaces), value 0..255. */
static int parse_exit_code(int *out, const char *s)
{
	unsigned v = 0;

	if (!s || !*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > 255)
			return -1;
	}
	*out = (int)v;
	return 0;
}

int kube_exec_status_parse(kube_exec_status *out, const void *json, size_t len)
{
	cJSON *root = NULL;
	const cJSON *details, *causes, *cause;
	int rc;

	status_init(out);
	rc = parse_object(&root, json, len);
	if (rc)
		return rc;
	fill_common(out, root);

	if (strcmp(out->status, "Success") == 0) {
		out->outcome = KUBE_EXEC_EXITED;
		out->exit_code = 0;
		rc = 0;
		goto done;
	}
	if (strcmp(out->status, "Failure") != 0) {
		rc = err_set(ERR_INVALID, "error stream protocol error: unknown status \"%s\"", out->status);
		goto done;
	}
	/* s/apimachinery/pkg/util/remotecommand/constants.go:
	 * NonZeroExitCodeReason = "NonZeroExitCode", ExitCodeCauseType =
	 * "ExitCode"; a StatusCause's Type is serialised as "reason". */
	if (strcmp(out->reason, "NonZeroExitCode") != 0) {
		out->outcome = KUBE_EXEC_FAILED;
		rc = 0;
		goto done;
	}
	details = cJSON_GetObjectItemCaseSensitive(root, "details");
	if (!cJSON_IsObject(details)) {
		rc = err_set(ERR_INVALID, "error stream protocol error: details must be set");
		goto done;
	}
	causes = cJSON_GetObjectItemCaseSensitive(details, "causes");
	if (!cJSON_IsArray(causes))
		causes = NULL;
	rc = err_set(ERR_INVALID, "error stream protocol error: no ExitCode cause given");
	cJSON_ArrayForEach(cause, causes) {
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(cause, "reason");
		const cJSON *msg = cJSON_GetObjectItemCaseSensitive(cause, "message");

		if (!cJSON_IsString(type) || strcmp(type->valuestring, "ExitCode") != 0)
			continue;
		if (!cJSON_IsString(msg) || parse_exit_code(&out->exit_code, msg->valuestring) != 0) {
			out->exit_code = -1;
			rc = err_set(ERR_INVALID, "error stream protocol error: invalid exit code value \"%.40s\"",
				     cJSON_IsString(msg) ? msg->valuestring : "(not a string)");
			goto done;
		}
		out->outcome = KUBE_EXEC_EXITED;
		rc = 0;
		break;
	}
done:
	cJSON_Delete(root);
	return rc;
}

int kube_exec_signal_of(int exit_code)
{
	return exit_code > 128 && exit_code <= 128 + 64 ? exit_code - 128 : 0;
}
