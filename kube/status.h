/*
 * kube/status: the API server's metav1.Status, parsed, and mapped to the
 * util/err.h codes with a message that quotes what the server said.
 *
 * Wire form (s/apimachinery/pkg/apis/meta/v1/types.go Status):
 *   {"kind":"Status","apiVersion":"v1","status":"Failure","message":"...",
 *    "reason":"NotFound","details":{"name":"x","group":"","kind":"pods",
 *    "causes":[{"reason":"FieldValueInvalid","message":"...","field":"spec.x"}],
 *    "retryAfterSeconds":1},"code":404}
 * Not every failure body is a Status: 429s from max-in-flight and API
 * priority and fairness are plain text (s/apiserver/pkg/server/filters/
 * maxinflight.go tooManyRequests), so a non-JSON body becomes the message.
 *
 * kube_status is a value with fixed-size fields (truncated, never
 * allocated), so it can be kept per thread without anything to free.
 */
#ifndef KUBE_STATUS_H
#define KUBE_STATUS_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define KUBE_STATUS_CAUSES_MAX 8

typedef struct kube_status_cause {
	char reason[64];   /* CauseType, e.g. "FieldValueInvalid", "ExitCode" */
	char field[256];
	char message[512];
} kube_status_cause;

typedef struct kube_status {
	long code;               /* Status.code, else the HTTP status */
	char status[16];         /* "Success" / "Failure" / "" */
	char reason[64];         /* StatusReason, e.g. "NotFound"; "" if none */
	char message[1024];      /* the server's message (or plain-text body) */
	char kind[64];           /* details.kind */
	char name[256];          /* details.name */
	char group[128];         /* details.group */
	int retry_after_seconds; /* details.retryAfterSeconds, 0 if none */
	int is_status;           /* the body was a JSON Status object */
	size_t ncauses;
	kube_status_cause causes[KUBE_STATUS_CAUSES_MAX];
} kube_status;

/* Fill *out from a JSON object that should be a Status (e.g. a watch
 * ERROR event's object). Unknown or missing fields stay empty. 0, or
 * ERR_INVALID when obj is not an object. */
int kube_status_from_json(kube_status *out, const cJSON *obj);

/* Fill *out from an HTTP error response: a JSON Status when the body is
 * one, else the body's text (trimmed, truncated, control characters
 * replaced) as the message and a reason derived from http_code. Never
 * fails: any input gives a usable status. */
void kube_status_from_body(kube_status *out, long http_code, const char *body, size_t len);

/* The util/err.h code for a status: by reason first, then by code
 * (NotFound -2, AlreadyExists/Conflict -3, Forbidden -4, Unauthorized -5,
 * Expired/Gone -12, BadRequest/Invalid/405/415 -8, 413 -9, 429/5xx/Timeout
 * -7, anything else -1). */
int kube_status_err_code(const kube_status *st);

/* err_set() the status's code with a message that quotes the server:
 *   "<what>: <message> (<reason>, HTTP <code>)[: <field>: <cause>]...[; hint]"
 * where the hint says what to do for 401/403/429. Returns the code. */
int kube_status_err(const kube_status *st, const char *what);

/* The Status of the last failed API request on this thread (the one whose
 * message err_msg() holds), or NULL if the last failure had none (a
 * transport error). Valid until the next request on this thread. */
const kube_status *kube_status_last(void);

/* Record st as this thread's last status (NULL clears). For kube/ modules. */
void kube_status_set_last(const kube_status *st);

#endif
