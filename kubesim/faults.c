/*
 * faults: see faults.h. The random stream is splitmix64 from --seed,
 * advanced under one mutex, so the k-th matching request of a rule always
 * gets the same draw for a given seed and request order.
 */
#include "kubesim/faults.h"

#include <ctype.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/str.h"

typedef struct rule {
	char verb[16];
	char path[512];
	ks_fault f;
	double p;        /* <0: not probability-triggered */
	int64_t every;   /* 0: none */
	int64_t first;   /* 0: none */
	int64_t seen;
} rule;

struct ks_faults {
	pthread_mutex_t mu;
	rule *r;
	int n;
	uint64_t state;
};

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static int parse_action(rule *r, const char *a)
{
	char *end;
	if (strncmp(a, "status=", 7) == 0) {
		r->f.kind = KS_FAULT_STATUS;
		long c = strtol(a + 7, &end, 10);
		if (c < 400 || c > 599)
			return -1;
		r->f.code = (int)c;
		while (*end == ',') {
			end++;
			if (strncmp(end, "text", 4) == 0) {
				r->f.text = 1;
				end += 4;
			} else if (strncmp(end, "retry=", 6) == 0) {
				long s = strtol(end + 6, &end, 10);
				if (s < 0 || s > 3600)
					return -1;
				r->f.retry_after = (int)s;
			} else {
				return -1;
			}
		}
		return *end ? -1 : 0;
	}
	struct {
		const char *name;
		enum ks_fault_kind k;
	} nk[] = {{"delay=", KS_FAULT_DELAY}, {"watch-cut=", KS_FAULT_WATCH_CUT},
		  {"watch-gone=", KS_FAULT_WATCH_GONE}, {"exec-cut=", KS_FAULT_EXEC_CUT}};
	for (size_t i = 0; i < sizeof nk / sizeof nk[0]; i++) {
		size_t l = strlen(nk[i].name);
		if (strncmp(a, nk[i].name, l) == 0) {
			r->f.kind = nk[i].k;
			long long v = strtoll(a + l, &end, 10);
			if (*end || v < 0 || v > (1LL << 40))
				return -1;
			r->f.n = v;
			return 0;
		}
	}
	if (strcmp(a, "drop") == 0) {
		r->f.kind = KS_FAULT_DROP;
		return 0;
	}
	return -1;
}

static int parse_rule(rule *r, char *s)
{
	memset(r, 0, sizeof *r);
	r->p = -1;
	while (isspace((unsigned char)*s))
		s++;
	strcpy(r->verb, "*");
	char *sp = strchr(s, ' ');
	if (sp && s[0] != '/') {
		*sp = 0;
		if (strlen(s) >= sizeof r->verb)
			return -1;
		strcpy(r->verb, s);
		s = sp + 1;
		while (*s == ' ')
			s++;
	}
	/* the action follows the last ':' (paths have none) */
	char *colon = strrchr(s, ':');
	if (!colon)
		return -1;
	*colon = 0;
	if (strlen(s) >= sizeof r->path || !s[0])
		return -1;
	strcpy(r->path, s);
	char *act = colon + 1;
	char *at = strchr(act, '@');
	if (at) {
		*at = 0;
		char *t = at + 1, *end;
		if (strncmp(t, "p=", 2) == 0) {
			r->p = strtod(t + 2, &end);
			if (*end || r->p < 0 || r->p > 1)
				return -1;
		} else if (strncmp(t, "every=", 6) == 0) {
			r->every = strtoll(t + 6, &end, 10);
			if (*end || r->every <= 0)
				return -1;
		} else if (strncmp(t, "first=", 6) == 0) {
			r->first = strtoll(t + 6, &end, 10);
			if (*end || r->first <= 0)
				return -1;
		} else {
			return -1;
		}
	}
	return parse_action(r, act);
}

int ks_faults_new(ks_faults **out, const char *spec, uint64_t seed)
{
	*out = NULL;
	ks_faults *f = calloc(1, sizeof *f);
	if (!f)
		return err_set(ERR_NOMEM, "out of memory");
	pthread_mutex_init(&f->mu, NULL);
	f->state = seed;
	if (!spec || !spec[0]) {
		*out = f;
		return 0;
	}
	if (strlen(spec) > KS_FAULTS_SPEC_MAX) {
		ks_faults_free(f);
		return err_set(ERR_INVALID, "--faults: spec longer than %d bytes", KS_FAULTS_SPEC_MAX);
	}
	char *copy = str_dup(spec);
	char *save = NULL;
	int rc = 0;
	for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
		char *t = tok;
		while (isspace((unsigned char)*t))
			t++;
		if (!*t)
			continue;
		char orig[600];
		snprintf(orig, sizeof orig, "%s", t);
		rule *nr = realloc(f->r, (size_t)(f->n + 1) * sizeof *nr);
		if (!nr) {
			rc = err_set(ERR_NOMEM, "out of memory");
			break;
		}
		f->r = nr;
		if (parse_rule(&f->r[f->n], t)) {
			rc = err_set(ERR_INVALID,
				     "--faults: cannot parse rule \"%s\" (want [VERB ]PATH_GLOB:ACTION[@p=P|@every=N|@first=N], see docs/kubesim.md)",
				     orig);
			break;
		}
		f->n++;
	}
	free(copy);
	if (rc) {
		ks_faults_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

void ks_faults_free(ks_faults *f)
{
	if (!f)
		return;
	pthread_mutex_destroy(&f->mu);
	free(f->r);
	free(f);
}

int ks_faults_match(ks_faults *f, const char *method, const char *verb, const char *path,
		    ks_fault *out, int max)
{
	if (!f || f->n == 0)
		return 0;
	int n = 0;
	pthread_mutex_lock(&f->mu);
	for (int i = 0; i < f->n && n < max; i++) {
		rule *r = &f->r[i];
		if (strcmp(r->verb, "*") != 0 && strcmp(r->verb, method) != 0 &&
		    !(verb && strcmp(r->verb, verb) == 0))
			continue;
		if (fnmatch(r->path, path, 0) != 0)
			continue;
		r->seen++;
		int fire = 1;
		if (r->p >= 0) {
			double d = (double)(splitmix(&f->state) >> 11) / 9007199254740992.0;
			fire = d < r->p;
		} else if (r->every) {
			fire = r->seen % r->every == 0;
		} else if (r->first) {
			fire = r->seen <= r->first;
		}
		if (fire)
			out[n++] = r->f;
	}
	pthread_mutex_unlock(&f->mu);
	return n;
}
