/*
 * Fuzz the kubeconfig parser: YAML to tree, shape checks, merging of two
 * documents (the input is split at the first "\n---8<---\n") and context
 * resolution (kube/config.h).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kube/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char sep[] = "\n---8<---\n";
	const char *text = (const char *)data;
	const char *cut = memmem(text, size, sep, sizeof(sep) - 1);
	kube_config_doc docs[2];
	size_t n = 1;
	kube_config *cfg = NULL;

	docs[0].text = text;
	docs[0].len = cut ? (size_t)(cut - text) : size;
	docs[0].path = "/fuzz/a/config";
	if (cut) {
		docs[1].text = cut + sizeof(sep) - 1;
		docs[1].len = size - docs[0].len - (sizeof(sep) - 1);
		docs[1].path = "b/config";
		n = 2;
	}
	if (kube_config_parse(&cfg, docs, n, NULL, NULL) == 0) {
		kube_config *copy = NULL;
		if (kube_config_dup(&copy, cfg) == 0)
			kube_config_free(copy);
	}
	kube_config_free(cfg);
	return 0;
}
