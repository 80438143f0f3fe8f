/*
 * proto: the Kubernetes protobuf wire format, decode only, for the few
 * request bodies that typed clients (kubectl 1.32+ clientsets) send as
 * application/vnd.kubernetes.protobuf: SelfSubjectAccessReview,
 * SelfSubjectRulesReview, SubjectAccessReview, LocalSubjectAccessReview,
 * SelfSubjectReview, TokenReview and TokenRequest. The body is the
 * "k8s\0" magic and a runtime.Unknown envelope
 * (k/k staging/src/k8s.io/apimachinery/pkg/runtime/serializer/protobuf/protobuf.go,
 * runtime/generated.proto) whose raw bytes are the object; field numbers
 * are those of k/k staging/src/k8s.io/api/{authorization,authentication}/v1/generated.proto.
 * Answers are always JSON (those clients also accept it).
 */
#ifndef KUBESIM_PROTO_H
#define KUBESIM_PROTO_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Decode body into the JSON form of the object (with kind and apiVersion
 * from the envelope). Caller owns *out. 0, or ERR_INVALID with a message
 * (malformed, unknown kind). */
int ks_proto_decode(cJSON **out, const void *body, size_t len);

#endif
