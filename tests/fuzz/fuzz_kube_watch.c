/*
 * Fuzz the watch stream decoder: bytes arrive in reads whose sizes come
 * from the input itself, are split into capped lines, and each line is
 * parsed as a watch event (kube/watch.h).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kube/status.h"
#include "kube/watch.h"

static int on_line(void *ud, const char *line, size_t len)
{
	kube_watch_event ev;
	(void)ud;
	if (kube_watch_event_parse(&ev, line, len) == 0) {
		if (ev.type == KUBE_WATCH_ERROR) {
			kube_status st;
			kube_status_from_json(&st, ev.object);
			kube_status_err_code(&st);
		}
		kube_watch_event_clear(&ev);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kube_line_decoder d;
	size_t off = 1;

	if (size < 1)
		return 0;
	/* the first byte picks the read size pattern; a small cap exercises
	 * the over-long line path */
	kube_line_decoder_init(&d, data[0] & 1 ? 4096 : 64);
	while (off < size) {
		size_t n = (size_t)(data[off - 1] % 37) + 1;
		if (n > size - off)
			n = size - off;
		if (kube_line_decoder_feed(&d, (const char *)data + off, n, on_line, NULL) != 0)
			break;
		off += n;
	}
	kube_line_decoder_free(&d);
	return 0;
}
