/*
 * tar: POSIX.1-2001 ustar + pax, written and read without a tar binary.
 *
 * Header layout (POSIX pax(1), "ustar Interchange Format"): 512-byte
 * blocks; name[100] mode[8] uid[8] gid[8] size[12] mtime[12] chksum[8]
 * typeflag[1] linkname[100] magic[6] version[2] uname[32] gname[32]
 * devmajor[8] devminor[8] prefix[155]. Numbers are octal text; GNU tar
 * writes sizes over 8 GiB in base-256 (high bit of the first byte set).
 * The checksum is the sum of the header's bytes with the chksum field read
 * as spaces (some old writers summed signed chars: both are accepted).
 * Extended headers: 'x' (pax, next entry), 'g' (pax global, ignored),
 * 'L' / 'K' (GNU long name / long link name of the next entry).
 *
 * The reader is a push parser: bytes arrive from the exec stream in pieces
 * of any size, and each entry is delivered whole once its body is in.
 */
#include "sandbox/tar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/str.h"

#define BLK 512
#define META_MAX (1u << 20)   /* pax / GNU long-name bodies */
#define PATH_MAX_LEN 4096

/* ---- writer ------------------------------------------------------------ */

static void put_octal(char *field, size_t width, uint64_t v)
{
	/* width-1 digits and a NUL */
	char tmp[32];

	snprintf(tmp, sizeof(tmp), "%0*llo", (int)(width - 1), (unsigned long long)v);
	memcpy(field, tmp, width - 1);
	field[width - 1] = '\0';
}

static void header_checksum(unsigned char *h)
{
	unsigned sum = 0;

	memset(h + 148, ' ', 8);
	for (int i = 0; i < BLK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

static int pad_to_block(buf *out, size_t len)
{
	static const char zeros[BLK];
	size_t pad = (BLK - len % BLK) % BLK;

	return pad ? buf_append(out, zeros, pad) : 0;
}

static int pax_record(buf *rec, const char *key, const char *value)
{
	size_t base = strlen(key) + strlen(value) + 3; /* ' ' '=' '\n' */
	size_t len = base + 1, d;

	/* the length counts its own digits */
	for (;;) {
		char tmp[24];

		d = (size_t)snprintf(tmp, sizeof(tmp), "%zu", len);
		if (base + d == len)
			break;
		len = base + d;
	}
	return buf_printf(rec, "%zu %s=%s\n", len, key, value);
}

static int write_header(buf *out, const char *name, unsigned mode, uint64_t size, int64_t mtime,
			char type, const char *linkname)
{
	unsigned char h[BLK];

	memset(h, 0, sizeof(h));
	memcpy(h, name, strnlen(name, 100));
	put_octal((char *)h + 100, 8, mode & 07777);
	put_octal((char *)h + 108, 8, 0);
	put_octal((char *)h + 116, 8, 0);
	put_octal((char *)h + 124, 12, size);
	put_octal((char *)h + 136, 12, mtime > 0 ? (uint64_t)mtime : 0);
	h[156] = (unsigned char)type;
	if (linkname)
		memcpy(h + 157, linkname, strnlen(linkname, 100));
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	header_checksum(h);
	return buf_append(out, h, BLK);
}

/* Emit a pax 'x' header when path or link do not fit their fields. */
static int add_entry(buf *out, const char *path, int is_dir, unsigned mode, int64_t mtime, char type,
		     const char *link, const void *data, size_t len)
{
	char name[PATH_MAX_LEN + 2];
	size_t n;
	int rc;

	if (!path || !*path || (n = strlen(path)) > PATH_MAX_LEN || path[0] == '/')
		return err_set(ERR_INVALID, "tar: bad path \"%.100s\"", path ? path : "");
	snprintf(name, sizeof(name), "%s%s", path, is_dir ? "/" : "");
	n = strlen(name);
	if (n > 100 || (link && strlen(link) > 100)) {
		buf rec = BUF_INIT(2 * PATH_MAX_LEN + 64);
		char pname[101];

		if ((n > 100 && (rc = pax_record(&rec, "path", name))) ||
		    (link && strlen(link) > 100 && (rc = pax_record(&rec, "linkpath", link)))) {
			buf_free(&rec);
			return rc;
		}
		snprintf(pname, sizeof(pname), "PaxHeaders/%.80s", name);
		rc = write_header(out, pname, 0644, rec.len, mtime, 'x', NULL);
		if (!rc)
			rc = buf_append(out, rec.data, rec.len);
		if (!rc)
			rc = pad_to_block(out, rec.len);
		buf_free(&rec);
		if (rc)
			return rc;
	}
	if ((rc = write_header(out, name, mode, data ? len : 0, mtime, type, link)) != 0)
		return rc;
	if (data && len) {
		if ((rc = buf_append(out, data, len)) != 0)
			return rc;
		return pad_to_block(out, len);
	}
	return 0;
}

int sandbox_tar_add_dir(buf *out, const char *path, unsigned mode, int64_t mtime)
{
	return add_entry(out, path, 1, mode, mtime, '5', NULL, NULL, 0);
}

int sandbox_tar_add_file(buf *out, const char *path, unsigned mode, int64_t mtime,
			 const void *data, size_t len)
{
	return add_entry(out, path, 0, mode, mtime, '0', NULL, data ? data : "", len);
}

int sandbox_tar_add_symlink(buf *out, const char *path, const char *target, int64_t mtime)
{
	if (!target || !*target)
		return err_set(ERR_INVALID, "tar: symlink %s without a target", path);
	return add_entry(out, path, 0, 0777, mtime, '2', target, NULL, 0);
}

int sandbox_tar_finish(buf *out)
{
	static const char zeros[2 * BLK];

	return buf_append(out, zeros, sizeof(zeros));
}

/* ---- paths -------------------------------------------------------------- */

int sandbox_tar_path_normalise(char *out, size_t size, const char *path, size_t len)
{
	size_t o = 0, i = 0;

	if (len == 0)
		return err_set(ERR_INVALID, "tar: empty path");
	if (memchr(path, '\0', len))
		return err_set(ERR_INVALID, "tar: path with a NUL byte");
	if (path[0] == '/')
		return err_set(ERR_INVALID, "tar: absolute path \"%.*s\"", (int)(len > 200 ? 200 : len),
			       path);
	while (i < len) {
		size_t j = i;

		while (j < len && path[j] != '/')
			j++;
		size_t cn = j - i;

		if (cn == 0 || (cn == 1 && path[i] == '.')) {
			/* empty or "." component */
		} else if (cn == 2 && path[i] == '.' && path[i + 1] == '.') {
			return err_set(ERR_INVALID, "tar: path \"%.*s\" has a \"..\" component",
				       (int)(len > 200 ? 200 : len), path);
		} else {
			if (o + (o ? 1 : 0) + cn + 1 > size)
				return err_set(ERR_INVALID, "tar: path too long");
			if (o)
				out[o++] = '/';
			memcpy(out + o, path + i, cn);
			o += cn;
		}
		i = j + 1;
	}
	if (o == 0)
		return err_set(ERR_INVALID, "tar: path \"%.*s\" names the root",
			       (int)(len > 200 ? 200 : len), path);
	out[o] = '\0';
	return 0;
}

/* A symlink at path pointing at target stays inside the root? */
static int symlink_stays_inside(const char *path, const char *target)
{
	int depth = 0;
	const char *p;

	if (!*target || target[0] == '/')
		return 0;
	/* the link's directory depth */
	for (p = path; *p; p++)
		if (*p == '/')
			depth++;
	p = target;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (--depth < 0)
				return 0;
		} else if (n > 0 && !(n == 1 && p[0] == '.')) {
			depth++;
		}
		p += n;
		if (*p == '/')
			p++;
	}
	return 1;
}

/* ---- reader ------------------------------------------------------------- */

enum rstate { R_HEADER, R_BODY, R_END, R_FAILED };
enum body_kind { B_SKIP, B_DATA, B_PAX, B_GLOBAL, B_LONGNAME, B_LONGLINK };

struct sandbox_tar_reader {
	enum rstate state;
	unsigned char hdr[BLK];
	size_t hdr_fill;
	int zero_blocks;
	uint64_t total, max_total;
	size_t max_file;
	sandbox_tar_entry_cb cb;
	void *ctx;

	/* the current entry */
	enum body_kind kind;
	uint64_t remaining;   /* body bytes still to come */
	uint64_t pad;         /* then padding */
	buf body;             /* DATA, PAX, LONG* content */
	char type;
	unsigned mode;
	char path[PATH_MAX_LEN + 1];
	char link[PATH_MAX_LEN + 1];

	/* overrides for the next entry */
	char *ov_path, *ov_link;
	int ov_size_set;
	uint64_t ov_size;
};

int sandbox_tar_reader_new(sandbox_tar_reader **out, size_t max_file, uint64_t max_total,
			   sandbox_tar_entry_cb cb, void *ctx)
{
	sandbox_tar_reader *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (!r)
		return err_set(ERR_NOMEM, "out of memory");
	r->max_file = max_file;
	r->max_total = max_total;
	r->cb = cb;
	r->ctx = ctx;
	buf_init(&r->body, max_file > META_MAX ? max_file : META_MAX);
	*out = r;
	return 0;
}

static void clear_overrides(sandbox_tar_reader *r)
{
	free(r->ov_path);
	free(r->ov_link);
	r->ov_path = r->ov_link = NULL;
	r->ov_size_set = 0;
}

void sandbox_tar_reader_free(sandbox_tar_reader *r)
{
	if (!r)
		return;
	clear_overrides(r);
	buf_free(&r->body);
	free(r);
}

static int fail(sandbox_tar_reader *r, int code)
{
	r->state = R_FAILED;
	return code;
}

/* Octal (space/NUL terminated, leading spaces allowed) or GNU base-256. */
static int parse_num(uint64_t *out, const unsigned char *f, size_t w, const char *what)
{
	uint64_t v = 0;
	size_t i = 0;

	if (f[0] & 0x80) {
		if (f[0] != 0x80)
			return err_set(ERR_INVALID, "tar: negative or oversized %s", what);
		for (i = 1; i < w; i++) {
			if (v >> 56)
				return err_set(ERR_INVALID, "tar: %s too large", what);
			v = (v << 8) | f[i];
		}
		*out = v;
		return 0;
	}
	while (i < w && f[i] == ' ')
		i++;
	for (; i < w && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v >> 60)
			return err_set(ERR_INVALID, "tar: %s too large", what);
		v = v * 8 + (uint64_t)(f[i] - '0');
	}
	for (; i < w; i++)
		if (f[i] != ' ' && f[i] != '\0')
			return err_set(ERR_INVALID, "tar: malformed %s field", what);
	*out = v;
	return 0;
}

static int checksum_ok(const unsigned char *h)
{
	uint64_t stored;
	unsigned usum = 0;
	int ssum = 0;

	if (parse_num(&stored, h + 148, 8, "checksum") != 0)
		return 0;
	for (int i = 0; i < BLK; i++) {
		unsigned char c = (i >= 148 && i < 156) ? ' ' : h[i];

		usum += c;
		ssum += (signed char)c;
	}
	return stored == usum || (int64_t)stored == ssum;
}

/* Parse a pax extended header body into the overrides. */
static int parse_pax(sandbox_tar_reader *r, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t len = 0, j = i;

		while (j < n && p[j] >= '0' && p[j] <= '9' && j - i < 10)
			len = len * 10 + (size_t)(p[j++] - '0');
		if (j == i || j >= n || p[j] != ' ' || len <= j - i + 1 || len > n - i ||
		    p[i + len - 1] != '\n')
			return err_set(ERR_INVALID, "tar: malformed pax record");
		const char *kv = p + j + 1, *end = p + i + len - 1;
		const char *eq = memchr(kv, '=', (size_t)(end - kv));

		if (!eq)
			return err_set(ERR_INVALID, "tar: pax record without '='");
		size_t kn = (size_t)(eq - kv), vn = (size_t)(end - eq - 1);

		if (kn == 4 && memcmp(kv, "path", 4) == 0) {
			if (vn > PATH_MAX_LEN || memchr(eq + 1, '\0', vn))
				return err_set(ERR_INVALID, "tar: bad pax path");
			free(r->ov_path);
			r->ov_path = str_ndup(eq + 1, vn);
			if (!r->ov_path)
				return err_set(ERR_NOMEM, "out of memory");
		} else if (kn == 8 && memcmp(kv, "linkpath", 8) == 0) {
			if (vn > PATH_MAX_LEN || memchr(eq + 1, '\0', vn))
				return err_set(ERR_INVALID, "tar: bad pax linkpath");
			free(r->ov_link);
			r->ov_link = str_ndup(eq + 1, vn);
			if (!r->ov_link)
				return err_set(ERR_NOMEM, "out of memory");
		} else if (kn == 4 && memcmp(kv, "size", 4) == 0) {
			char tmp[24];
			uint64_t v;

			if (vn == 0 || vn >= sizeof(tmp))
				return err_set(ERR_INVALID, "tar: bad pax size");
			memcpy(tmp, eq + 1, vn);
			tmp[vn] = '\0';
			if (str_parse_u64(&v, tmp, UINT64_MAX) != 0)
				return err_set(ERR_INVALID, "tar: bad pax size");
			r->ov_size = v;
			r->ov_size_set = 1;
		}
		i += len;
	}
	return 0;
}

static int deliver(sandbox_tar_reader *r)
{
	sandbox_tar_entry e;

	memset(&e, 0, sizeof(e));
	e.path = r->path;
	e.mode = r->mode;
	switch (r->type) {
	case '5':
		e.type = SANDBOX_TAR_DIR;
		break;
	case '2':
		e.type = SANDBOX_TAR_SYMLINK;
		e.linkname = r->link;
		break;
	case '1':
		e.type = SANDBOX_TAR_HARDLINK;
		e.linkname = r->link;
		break;
	default:
		e.type = SANDBOX_TAR_FILE;
		e.data = buf_cstr(&r->body);
		e.size = r->body.len;
		break;
	}
	return r->cb ? r->cb(r->ctx, &e) : 0;
}

/* A full header block is in r->hdr. */
static int on_header(sandbox_tar_reader *r)
{
	const unsigned char *h = r->hdr;
	uint64_t size, mode;
	char raw[PATH_MAX_LEN + 2];
	const char *name;
	size_t nlen;
	int rc, is_root = 0;

	for (size_t i = 0; i < BLK; i++) {
		if (h[i])
			goto nonzero;
	}
	if (++r->zero_blocks == 2)
		r->state = R_END;
	return 0;
nonzero:
	if (r->zero_blocks)
		return err_set(ERR_INVALID, "tar: a lone zero block inside the archive");
	if (memcmp(h + 257, "ustar", 5) != 0)
		return err_set(ERR_INVALID, "tar: not a ustar header (bad magic)");
	if (!checksum_ok(h))
		return err_set(ERR_INVALID, "tar: header checksum mismatch");
	if ((rc = parse_num(&size, h + 124, 12, "size")) || (rc = parse_num(&mode, h + 100, 8, "mode")))
		return rc;
	r->type = (char)h[156];
	r->mode = (unsigned)(mode & 07777);
	if (r->ov_size_set && r->type != 'x' && r->type != 'g' && r->type != 'L' && r->type != 'K')
		size = r->ov_size;
	r->remaining = size;
	r->pad = (BLK - size % BLK) % BLK;
	buf_reset(&r->body);

	switch (r->type) {
	case 'x':
	case 'g':
	case 'L':
	case 'K':
		if (size > META_MAX)
			return err_set(ERR_TOOBIG, "tar: extended header of %llu bytes",
				       (unsigned long long)size);
		r->kind = r->type == 'x' ? B_PAX : r->type == 'g' ? B_GLOBAL :
			  r->type == 'L' ? B_LONGNAME : B_LONGLINK;
		r->state = R_BODY;
		return 0;
	case '0': case '\0': case '7': case '1': case '2': case '5':
	case '3': case '4': case '6':
		break;
	default:
		return err_set(ERR_INVALID, "tar: unsupported entry type '%c'",
			       r->type >= 0x20 && r->type < 0x7f ? r->type : '?');
	}

	/* the entry's name */
	if (r->ov_path) {
		name = r->ov_path;
		nlen = strlen(name);
	} else {
		size_t pn = strnlen((const char *)h + 345, 155);
		size_t nn = strnlen((const char *)h, 100);

		/* prefix only in POSIX ustar ("ustar\0"); GNU puts other data there */
		if (pn && memcmp(h + 257, "ustar\0", 6) == 0)
			snprintf(raw, sizeof(raw), "%.*s/%.*s", (int)pn, h + 345, (int)nn, h);
		else
			snprintf(raw, sizeof(raw), "%.*s", (int)nn, h);
		name = raw;
		nlen = strlen(raw);
	}
	{
		/* "." and "./" name the archive's root directory itself */
		size_t k = 0;

		while (k < nlen && (name[k] == '.' || name[k] == '/') &&
		       !(name[k] == '.' && k + 1 < nlen && name[k + 1] == '.'))
			k++;
		if (k == nlen && nlen > 0 && name[0] == '.')
			is_root = 1;
	}
	if (!is_root && (rc = sandbox_tar_path_normalise(r->path, sizeof(r->path), name, nlen)) != 0)
		return rc;

	/* the link */
	r->link[0] = '\0';
	if (r->type == '1' || r->type == '2') {
		const char *ln = r->ov_link;
		char lraw[101];

		if (!ln) {
			snprintf(lraw, sizeof(lraw), "%.*s", 100, (const char *)h + 157);
			ln = lraw;
		}
		if (!*ln)
			return err_set(ERR_INVALID, "tar: link %s without a target", r->path);
		if (r->type == '1') {
			if ((rc = sandbox_tar_path_normalise(r->link, sizeof(r->link), ln,
							     strlen(ln))) != 0)
				return err_wrap(rc, "hard link %s", r->path);
		} else {
			if (str_copy(r->link, sizeof(r->link), ln) != 0)
				return err_set(ERR_INVALID, "tar: symlink target too long");
			if (!symlink_stays_inside(r->path, r->link))
				return err_set(ERR_INVALID,
					       "tar: symlink %s -> %s points outside the workspace",
					       r->path, r->link);
		}
	}
	clear_overrides(r);

	if (r->type == '0' || r->type == '\0' || r->type == '7') {
		if (size > r->max_file)
			return err_set(ERR_TOOBIG, "tar: %s is %llu bytes, over the %zu-byte cap",
				       r->path, (unsigned long long)size, r->max_file);
		if (is_root)
			return err_set(ERR_INVALID, "tar: a regular file named \".\"");
		r->kind = B_DATA;
	} else {
		r->kind = B_SKIP;
	}
	if (r->kind == B_SKIP && (r->type == '1' || r->type == '2' || r->type == '5') && !is_root) {
		/* deliver now; a body (rare: hard links may carry one) is skipped */
		if ((rc = deliver(r)) != 0)
			return rc;
	}
	r->state = R_BODY;
	return 0;
}

static int body_done(sandbox_tar_reader *r)
{
	int rc = 0;

	switch (r->kind) {
	case B_DATA:
		rc = deliver(r);
		break;
	case B_PAX:
		rc = parse_pax(r, r->body.data ? r->body.data : "", r->body.len);
		break;
	case B_LONGNAME:
	case B_LONGLINK: {
		size_t n = strnlen(buf_cstr(&r->body), r->body.len);
		char **dst = r->kind == B_LONGNAME ? &r->ov_path : &r->ov_link;

		if (n > PATH_MAX_LEN)
			return err_set(ERR_INVALID, "tar: GNU long name too long");
		free(*dst);
		*dst = str_ndup(buf_cstr(&r->body), n);
		if (!*dst)
			rc = err_set(ERR_NOMEM, "out of memory");
		break;
	}
	default:
		break;
	}
	buf_reset(&r->body);
	r->state = R_HEADER;
	r->hdr_fill = 0;
	return rc;
}

int sandbox_tar_reader_feed(sandbox_tar_reader *r, const void *data, size_t n)
{
	const unsigned char *p = data;
	int rc;

	if (r->state == R_FAILED)
		return err_set(ERR_INVALID, "tar: reader already failed");
	if (r->max_total && (r->total + n > r->max_total || r->total + n < r->total))
		return fail(r, err_set(ERR_TOOBIG, "tar: workspace archive over %llu bytes",
				       (unsigned long long)r->max_total));
	r->total += n;
	while (n > 0) {
		switch (r->state) {
		case R_HEADER: {
			size_t take = BLK - r->hdr_fill;

			if (take > n)
				take = n;
			memcpy(r->hdr + r->hdr_fill, p, take);
			r->hdr_fill += take;
			p += take;
			n -= take;
			if (r->hdr_fill < BLK)
				break;
			r->hdr_fill = 0;
			if ((rc = on_header(r)) != 0)
				return fail(r, rc);
			/* an entry without a body is complete at once */
			if (r->state == R_BODY && r->remaining == 0 && r->pad == 0 &&
			    (rc = body_done(r)) != 0)
				return fail(r, rc);
			break;
		}
		case R_BODY: {
			if (r->remaining > 0) {
				size_t take = r->remaining < n ? (size_t)r->remaining : n;

				if (r->kind != B_SKIP && (rc = buf_append(&r->body, p, take)) != 0)
					return fail(r, err_set(rc, "tar: entry %s too large", r->path));
				r->remaining -= take;
				p += take;
				n -= take;
			} else {
				size_t take = r->pad < n ? (size_t)r->pad : n;

				r->pad -= take;
				p += take;
				n -= take;
			}
			if (r->remaining == 0 && r->pad == 0 && (rc = body_done(r)) != 0)
				return fail(r, rc);
			break;
		}
		case R_END:
			for (size_t i = 0; i < n; i++)
				if (p[i] != 0)
					return fail(r, err_set(ERR_INVALID,
							       "tar: data after the end of the archive"));
			n = 0;
			break;
		case R_FAILED:
			return ERR_INVALID;
		}
	}
	return 0;
}

int sandbox_tar_reader_finish(sandbox_tar_reader *r)
{
	if (r->state == R_END)
		return 0;
	if (r->state == R_FAILED)
		return err_set(ERR_INVALID, "tar: reader failed earlier");
	/* GNU tar and BusyBox always write two zero blocks; one zero block
	 * followed by EOF is what some writers produce: accept it only if the
	 * stream stopped exactly at a block boundary after it */
	if (r->state == R_HEADER && r->zero_blocks == 1 && r->hdr_fill == 0)
		return 0;
	return err_set(ERR_INVALID, "tar stream truncated after %llu bytes (no end-of-archive "
		       "marker)", (unsigned long long)r->total);
}
