/*
 * Fuzz kubesim's parsers of what clients send (kubesim/selector.h,
 * kubesim/proto.h, kubesim/patch.h): the first byte picks one,
 *   0 labelSelector, 1 fieldSelector (both then matched against a pod),
 *   2 a protobuf request body (runtime.Unknown envelope),
 *   3 a document and a patch, split at the first NUL, applied as merge,
 *     strategic merge and JSON patch.
 * Sizes are capped the way the server caps them (KS_MAX_BODY; selectors
 * at KS_SELECTOR_MAX_LEN inside the parser).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kubesim/patch.h"
#include "kubesim/proto.h"
#include "kubesim/selector.h"

#define FUZZ_MAX (256 * 1024)

static const char POD[] = "{\"metadata\":{\"name\":\"p\",\"namespace\":\"default\",\"labels\":{\"app\":\"x\",\"tier\":\"2\"}},"
			  "\"status\":{\"phase\":\"Running\"}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > FUZZ_MAX)
		return 0;
	int which = data[0] % 4;
	char *s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	if (which == 0 || which == 1) {
		ks_selector *sel = NULL;
		int rc = which == 0 ? ks_selector_parse_labels(&sel, s) : ks_selector_parse_fields(&sel, s);
		if (rc == 0) {
			cJSON *pod = cJSON_Parse(POD);
			ks_selector_match_labels(sel, cJSON_GetObjectItemCaseSensitive(
							      cJSON_GetObjectItemCaseSensitive(pod, "metadata"), "labels"));
			ks_selector_match_fields(sel, pod);
			for (int i = 0; ks_selector_key(sel, i); i++)
				;
			cJSON_Delete(pod);
		}
		ks_selector_free(sel);
	} else if (which == 2) {
		cJSON *obj = NULL;
		if (ks_proto_decode(&obj, data + 1, size - 1) == 0)
			cJSON_Delete(obj);
	} else {
		size_t dl = strlen(s);
		const char *patch = dl + 1 < size - 1 ? s + dl + 1 : "";
		cJSON *p = cJSON_Parse(patch);
		for (int k = 0; k < 3 && p; k++) {
			cJSON *doc = cJSON_Parse(s);
			if (!doc)
				break;
			if (k == 0)
				ks_patch_merge(&doc, p);
			else if (k == 1)
				ks_patch_strategic(&doc, p);
			else
				ks_patch_json(&doc, p);
			char *out = cJSON_PrintUnformatted(doc);
			free(out);
			cJSON_Delete(doc);
		}
		cJSON_Delete(p);
	}
	free(s);
	return 0;
}
