/*
 * Fuzz the object readers: any JSON as a Pod, a Job and an object's
 * metadata (kube/objects.h), as they arrive from GET, LIST and watch.
 */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "kube/objects.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *o = cJSON_ParseWithLength((const char *)data, size);
	kube_pod_summary p;
	kube_job_summary j;

	kube_pod_summary_parse(&p, o);
	kube_job_summary_parse(&j, o);
	(void)kube_obj_name(o);
	(void)kube_obj_namespace(o);
	(void)kube_obj_uid(o);
	(void)kube_obj_resource_version(o);
	(void)kube_obj_label(o, "app");
	(void)kube_obj_deleting(o);
	/* a List: each item too */
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(o, "items");
	if (cJSON_IsArray(items))
		for (const cJSON *it = items->child; it; it = it->next)
			kube_pod_summary_parse(&p, it);
	cJSON_Delete(o);
	return 0;
}
