/*
 * quantity: strict parsing of Kubernetes resource quantities ("500m", "1",
 * "2Gi", "512Mi", "1e3"), as k8s.io/apimachinery/pkg/api/resource
 * (quantity.go, ParseQuantity) accepts them, into an exact integer number
 * of milli-units, so that limits can be compared without floating point.
 */
#ifndef SANDBOX_QUANTITY_H
#define SANDBOX_QUANTITY_H

#include <stdint.h>

/*
 * Parse s into *out_milli (1 = 1000, "500m" = 500, "1Ki" = 1024000).
 * Grammar (quantity.go): [+]digits[.digits] then a suffix: binary Ki Mi Gi
 * Ti Pi Ei, decimal n u m "" k M G T P E, or an exponent e|E[+|-]digits.
 * Negative values, values below one milli-unit that are not whole, empty
 * strings, whitespace, unknown suffixes and values over INT64_MAX
 * milli-units are ERR_INVALID with a message quoting s.
 */
int sandbox_quantity_parse(int64_t *out_milli, const char *s);

#endif
