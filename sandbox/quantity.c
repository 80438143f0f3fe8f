/*
 * Kubernetes quantities as exact milli-units. Upstream grammar
 * (staging/src/k8s.io/apimachinery/pkg/api/resource/quantity.go):
 *   <quantity> ::= <signedNumber><suffix>
 *   <suffix>   ::= <binarySI> | <decimalExponent> | <decimalSI>
 *   <binarySI> ::= Ki | Mi | Gi | Ti | Pi | Ei
 *   <decimalSI>::= m | "" | k | M | G | T | P | E   (also n, u)
 * We refuse the negative sign: no resource request here is negative.
 * Upstream rounds sub-milli fractions up; a request that precise is a
 * mistake, so anything not a whole number of milli-units is refused.
 */
#include "sandbox/quantity.h"

#include <string.h>

#include "util/err.h"

#define QMAX_DIGITS 40

/* value = mant * 10^exp10 * 2^exp2, as milli-units (so exp10 += 3). */
int sandbox_quantity_parse(int64_t *out_milli, const char *s)
{
	const char *p = s;
	unsigned __int128 mant = 0;
	int frac_digits = 0, ndigits = 0, exp10 = 0, exp2 = 0;

	if (!s || !*s)
		return err_set(ERR_INVALID, "quantity: empty");
	if (strlen(s) > 64)
		return err_set(ERR_INVALID, "quantity %.20s...: too long", s);
	if (*p == '+')
		p++;
	if (*p == '-')
		return err_set(ERR_INVALID, "quantity \"%s\": must not be negative", s);
	if (!(*p >= '0' && *p <= '9') && !(*p == '.' && p[1] >= '0' && p[1] <= '9'))
		return err_set(ERR_INVALID, "quantity \"%s\": must start with a number", s);
	for (; *p >= '0' && *p <= '9'; p++) {
		if (mant == 0 && *p == '0')
			continue;
		if (++ndigits > QMAX_DIGITS)
			return err_set(ERR_INVALID, "quantity \"%s\": too many digits", s);
		mant = mant * 10 + (unsigned)(*p - '0');
	}
	if (*p == '.') {
		p++;
		if (!(*p >= '0' && *p <= '9'))
			return err_set(ERR_INVALID, "quantity \"%s\": digits must follow '.'", s);
		for (; *p >= '0' && *p <= '9'; p++) {
			if (++ndigits > QMAX_DIGITS)
				return err_set(ERR_INVALID, "quantity \"%s\": too many digits", s);
			mant = mant * 10 + (unsigned)(*p - '0');
			frac_digits++;
		}
	}
	exp10 = 3 - frac_digits;
	if (*p == '\0') {
		/* no suffix */
	} else if (p[1] == 'i' && p[2] == '\0') {
		static const char bin[] = "KMGTPE";
		const char *q = strchr(bin, *p);

		if (!q || !*p)
			return err_set(ERR_INVALID, "quantity \"%s\": unknown suffix \"%s\"", s, p);
		exp2 = 10 * (int)(q - bin + 1);
	} else if ((*p == 'e' || *p == 'E') && p[1] != '\0') {
		int sign = 1, e = 0;
		const char *q = p + 1;

		if (*q == '+' || *q == '-')
			sign = (*q++ == '-') ? -1 : 1;
		if (!*q)
			return err_set(ERR_INVALID, "quantity \"%s\": exponent has no digits", s);
		for (; *q; q++) {
			if (*q < '0' || *q > '9')
				return err_set(ERR_INVALID, "quantity \"%s\": bad exponent", s);
			e = e * 10 + (*q - '0');
			if (e > 100)
				return err_set(ERR_INVALID, "quantity \"%s\": exponent out of range", s);
		}
		exp10 += sign * e;
	} else if (p[1] == '\0') {
		switch (*p) {
		case 'n': exp10 -= 9; break;
		case 'u': exp10 -= 6; break;
		case 'm': exp10 -= 3; break;
		case 'k': exp10 += 3; break;
		case 'M': exp10 += 6; break;
		case 'G': exp10 += 9; break;
		case 'T': exp10 += 12; break;
		case 'P': exp10 += 15; break;
		case 'E': exp10 += 18; break;
		default:
			return err_set(ERR_INVALID, "quantity \"%s\": unknown suffix \"%s\"", s, p);
		}
	} else {
		return err_set(ERR_INVALID, "quantity \"%s\": unknown suffix \"%s\"", s, p);
	}

	const unsigned __int128 lim = (unsigned __int128)INT64_MAX;

	for (; exp2 > 0; exp2--) {
		mant <<= 1;
		if (mant > lim)
			goto toobig;
	}
	for (; exp10 > 0; exp10--) {
		mant *= 10;
		if (mant > lim)
			goto toobig;
	}
	for (; exp10 < 0; exp10++) {
		if (mant % 10 != 0)
			return err_set(ERR_INVALID,
				       "quantity \"%s\": finer than one milli-unit", s);
		mant /= 10;
	}
	if (mant > lim)
		goto toobig;
	*out_milli = (int64_t)mant;
	return 0;
toobig:
	return err_set(ERR_INVALID, "quantity \"%s\": too large", s);
}
