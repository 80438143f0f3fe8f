#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/tar.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/str.h"

typedef struct seen {
	int n;
	char paths[64][300];
	int types[64];
	char data[64][64];
	size_t sizes[64];
	char links[64][128];
} seen;

static int collect(void *ctx, const sandbox_tar_entry *e)
{
	seen *s = ctx;

	if (s->n >= 64)
		return err_set(ERR_FAIL, "too many");
	str_copy(s->paths[s->n], sizeof(s->paths[0]), e->path);
	s->types[s->n] = e->type;
	s->sizes[s->n] = e->size;
	if (e->data)
		snprintf(s->data[s->n], sizeof(s->data[0]), "%.*s", (int)(e->size > 63 ? 63 : e->size),
			 e->data);
	if (e->linkname)
		str_copy(s->links[s->n], sizeof(s->links[0]), e->linkname);
	s->n++;
	return 0;
}

/* Feed in pieces of `step` bytes to exercise the streaming parser. */
static int read_all(seen *s, const void *p, size_t n, size_t step)
{
	sandbox_tar_reader *r;
	int rc = 0;

	memset(s, 0, sizeof(*s));
	cr_assert_eq(sandbox_tar_reader_new(&r, 1 << 20, 64 << 20, collect, s), 0);
	for (size_t off = 0; off < n && rc == 0; off += step)
		rc = sandbox_tar_reader_feed(r, (const char *)p + off, n - off < step ? n - off : step);
	if (rc == 0)
		rc = sandbox_tar_reader_finish(r);
	sandbox_tar_reader_free(r);
	return rc;
}

static void build_sample(buf *b, const char *longname)
{
	cr_assert_eq(sandbox_tar_add_dir(b, "src", 0755, 1700000000), 0);
	cr_assert_eq(sandbox_tar_add_file(b, "src/main.c", 0644, 1700000000, "int main;\n", 10), 0);
	cr_assert_eq(sandbox_tar_add_file(b, "run.sh", 0755, 1700000000, "#!/bin/sh\n", 10), 0);
	cr_assert_eq(sandbox_tar_add_file(b, "empty", 0644, 1700000000, "", 0), 0);
	cr_assert_eq(sandbox_tar_add_symlink(b, "src/link", "main.c", 1700000000), 0);
	cr_assert_eq(sandbox_tar_add_file(b, longname, 0644, 1700000000, "deep", 4), 0);
	cr_assert_eq(sandbox_tar_finish(b), 0);
}

static char *long_name(void)
{
	static char name[300];

	strcpy(name, "a-very-long-directory-name-that-goes-on/");
	while (strlen(name) < 250)
		strcat(name, "more-directories/");
	strcat(name, "file.txt");
	return name;
}

Test(sandbox_tar, writer_round_trips_through_reader_in_any_piece_size)
{
	buf b = BUF_INIT(1 << 20);
	seen s;
	size_t steps[] = { 1, 7, 511, 512, 513, 100000 };

	build_sample(&b, long_name());
	cr_assert_eq(b.len % 512, 0);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		cr_assert_eq(read_all(&s, b.data, b.len, steps[i]), 0, "step %zu: %s", steps[i], err_msg());
		cr_assert_eq(s.n, 6);
		cr_assert_str_eq(s.paths[0], "src");
		cr_assert_eq(s.types[0], SANDBOX_TAR_DIR);
		cr_assert_str_eq(s.paths[1], "src/main.c");
		cr_assert_str_eq(s.data[1], "int main;\n");
		cr_assert_eq(s.types[3], SANDBOX_TAR_FILE);
		cr_assert_eq(s.sizes[3], 0);
		cr_assert_eq(s.types[4], SANDBOX_TAR_SYMLINK);
		cr_assert_str_eq(s.links[4], "main.c");
		cr_assert_str_eq(s.paths[5], long_name());
		cr_assert_str_eq(s.data[5], "deep");
	}
	buf_free(&b);
}

static int sh(const char *cmd)
{
	int rc = system(cmd);

	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	buf b = BUF_INIT(64 << 20);
	char tmp[4096];
	size_t n;

	cr_assert_not_null(f, "open %s", path);
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		cr_assert_eq(buf_append(&b, tmp, n), 0);
	fclose(f);
	return buf_take(&b, len);
}

Test(sandbox_tar, gnu_tar_extracts_what_the_writer_wrote)
{
	char dir[] = "/tmp/sbtar-XXXXXX", cmd[1024];
	buf b = BUF_INIT(1 << 20);

	cr_assert_not_null(mkdtemp(dir));
	build_sample(&b, long_name());
	snprintf(cmd, sizeof(cmd), "%s/in.tar", dir);
	FILE *f = fopen(cmd, "wb");
	fwrite(b.data, 1, b.len, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "mkdir %s/x && head -c %zu %s/in.tar | tar -x -C %s/x -f - && "
		 "test \"$(cat %s/x/src/main.c)\" = 'int main;' && test -x %s/x/run.sh && "
		 "test \"$(readlink %s/x/src/link)\" = main.c && test \"$(cat %s/x/%s)\" = deep",
		 dir, b.len, dir, dir, dir, dir, dir, dir, long_name());
	cr_assert_eq(sh(cmd), 0, "%s", cmd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	sh(cmd);
	buf_free(&b);
}

static void reads_real_tar(const char *format)
{
	char dir[] = "/tmp/sbtar-XXXXXX", cmd[2048], path[300];
	seen s;
	size_t len;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd),
		 "cd %s && mkdir -p w/sub \"w/%s\" && printf hello > w/sub/a.txt && "
		 "printf deep > \"w/%s/f\" && ln -s sub/a.txt w/l && ln w/sub/a.txt w/hard && "
		 "mkfifo w/fifo && tar --format=%s -c -C w -f out.tar .", dir, long_name(),
		 long_name(), format);
	cr_assert_eq(sh(cmd), 0, "%s", cmd);
	snprintf(path, sizeof(path), "%s/out.tar", dir);
	char *data = slurp(path, &len);
	cr_assert_eq(read_all(&s, data, len, 4096), 0, "%s: %s", format, err_msg());
	int found_a = 0, found_deep = 0, found_link = 0, found_hard = 0;
	for (int i = 0; i < s.n; i++) {
		cr_assert_neq(s.paths[i][0], '.', "%s", s.paths[i]);
		cr_assert_str_neq(s.paths[i], "fifo");
		if (strcmp(s.paths[i], "sub/a.txt") == 0 || strcmp(s.paths[i], "hard") == 0) {
			if (s.types[i] == SANDBOX_TAR_FILE) {
				cr_assert_str_eq(s.data[i], "hello");
				found_a = 1;
			} else {
				cr_assert_eq(s.types[i], SANDBOX_TAR_HARDLINK);
				found_hard = 1;
			}
		}
		if (strcmp(s.links[i], "sub/a.txt") == 0 && s.types[i] == SANDBOX_TAR_SYMLINK)
			found_link = 1;
		if (str_has_suffix(s.paths[i], "/f") && strlen(s.paths[i]) > 200) {
			cr_assert_str_eq(s.data[i], "deep");
			found_deep = 1;
		}
	}
	cr_assert(found_a && found_deep && found_link && found_hard, "%s: %d %d %d %d", format,
		  found_a, found_deep, found_link, found_hard);
	free(data);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	sh(cmd);
}

Test(sandbox_tar, reads_gnu_format) { reads_real_tar("gnu"); }
Test(sandbox_tar, reads_pax_format) { reads_real_tar("posix"); }
Test(sandbox_tar, reads_ustar_format_short_names)
{
	char dir[] = "/tmp/sbtar-XXXXXX", cmd[1024], path[300];
	seen s;
	size_t len;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd), "cd %s && mkdir -p w/d && printf x > w/d/f && "
		 "tar --format=ustar -c -C w -f out.tar .", dir);
	cr_assert_eq(sh(cmd), 0);
	snprintf(path, sizeof(path), "%s/out.tar", dir);
	char *data = slurp(path, &len);
	cr_assert_eq(read_all(&s, data, len, 1000), 0, "%s", err_msg());
	cr_assert_eq(s.n, 2);
	cr_assert_str_eq(s.paths[1], "d/f");
	free(data);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	sh(cmd);
}

/* Build one raw header with the given name/type/link, fixing the checksum. */
static void raw_entry(buf *b, const char *name, char type, const char *link, const char *data)
{
	unsigned char h[512];
	size_t n = data ? strlen(data) : 0;
	unsigned sum = 0;

	memset(h, 0, sizeof(h));
	memcpy(h, name, strlen(name));
	memcpy(h + 100, "0000644", 7);
	memcpy(h + 108, "0000000", 7);
	memcpy(h + 116, "0000000", 7);
	{ char num[32]; snprintf(num, sizeof(num), "%011zo", n & 077777777777); memcpy(h + 124, num, 11); }
	memcpy(h + 136, "00000000000", 11);
	h[156] = (unsigned char)type;
	if (link)
		memcpy(h + 157, link, strlen(link));
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	buf_append(b, h, 512);
	if (n) {
		char pad[512] = { 0 };

		buf_append(b, data, n);
		buf_append(b, pad, (512 - n % 512) % 512);
	}
}

static int read_one_raw(const char *name, char type, const char *link, const char *data)
{
	buf b = BUF_INIT(1 << 20);
	seen s;
	int rc;

	raw_entry(&b, name, type, link, data);
	sandbox_tar_finish(&b);
	rc = read_all(&s, b.data, b.len, 512);
	buf_free(&b);
	return rc;
}

Test(sandbox_tar, rejects_unsafe_paths_and_links)
{
	cr_assert_eq(read_one_raw("/etc/passwd", '0', NULL, "x"), ERR_INVALID);
	cr_assert(strstr(err_msg(), "absolute"), "%s", err_msg());
	cr_assert_eq(read_one_raw("../x", '0', NULL, "x"), ERR_INVALID);
	cr_assert_eq(read_one_raw("a/../../x", '0', NULL, "x"), ERR_INVALID);
	cr_assert_eq(read_one_raw("a/..", '5', NULL, NULL), ERR_INVALID);
	cr_assert_eq(read_one_raw("l", '2', "/etc/shadow", NULL), ERR_INVALID);
	cr_assert(strstr(err_msg(), "outside"), "%s", err_msg());
	cr_assert_eq(read_one_raw("d/l", '2', "../../x", NULL), ERR_INVALID);
	cr_assert_eq(read_one_raw("d/l", '2', "../x", NULL), 0, "%s", err_msg());
	cr_assert_eq(read_one_raw("d/l", '2', "a/../../..", NULL), ERR_INVALID);
	cr_assert_eq(read_one_raw("h", '1', "../outside", NULL), ERR_INVALID);
	cr_assert_eq(read_one_raw("h", '1', "/abs", NULL), ERR_INVALID);
	cr_assert_eq(read_one_raw("s", 'S', NULL, NULL), ERR_INVALID);
	cr_assert_eq(read_one_raw("./ok/./file", '0', NULL, "x"), 0, "%s", err_msg());
	cr_assert_eq(read_one_raw("./", '5', NULL, NULL), 0, "%s", err_msg());
}

Test(sandbox_tar, truncated_stream_is_an_error_not_a_shorter_workspace)
{
	buf b = BUF_INIT(1 << 20);
	seen s;

	build_sample(&b, "x");
	/* cut anywhere before the end marker */
	size_t cuts[] = { 0, 100, 512, 1000, b.len - 1024 - 1, b.len - 1024, b.len - 512 - 1 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		int rc = read_all(&s, b.data, cuts[i], 512);

		cr_assert_eq(rc, ERR_INVALID, "cut at %zu accepted", cuts[i]);
	}
	/* one zero block then EOF at a block boundary: accepted (some writers) */
	cr_assert_eq(read_all(&s, b.data, b.len - 512, 512), 0, "%s", err_msg());
	/* GNU tar's record padding after the end: accepted */
	buf_append(&b, (char[2048]){ 0 }, 2048);
	cr_assert_eq(read_all(&s, b.data, b.len, 333), 0, "%s", err_msg());
	/* junk after the end: refused */
	buf_append_str(&b, "junk");
	cr_assert_eq(read_all(&s, b.data, b.len, 333), ERR_INVALID);
	buf_free(&b);
}

Test(sandbox_tar, bad_checksum_and_magic_refused)
{
	buf b = BUF_INIT(1 << 20);
	seen s;

	raw_entry(&b, "f", '0', NULL, "data");
	sandbox_tar_finish(&b);
	b.data[0] = 'g';
	cr_assert_eq(read_all(&s, b.data, b.len, 512), ERR_INVALID);
	cr_assert(strstr(err_msg(), "checksum"), "%s", err_msg());
	b.data[0] = 'f';
	memcpy(b.data + 257, "xxxxx", 5);
	cr_assert_eq(read_all(&s, b.data, b.len, 512), ERR_INVALID);
	buf_free(&b);
}

Test(sandbox_tar, caps_on_file_and_total_size)
{
	buf b = BUF_INIT(4 << 20);
	sandbox_tar_reader *r;
	char *big = malloc(200000);
	seen s;

	memset(big, 'a', 200000);
	cr_assert_eq(sandbox_tar_add_file(&b, "big", 0644, 0, big, 200000), 0);
	sandbox_tar_finish(&b);
	cr_assert_eq(sandbox_tar_reader_new(&r, 100000, 1 << 30, collect, &s), 0);
	cr_assert_eq(sandbox_tar_reader_feed(r, b.data, b.len), ERR_TOOBIG);
	cr_assert_eq(sandbox_tar_reader_feed(r, b.data, 1), ERR_INVALID);
	sandbox_tar_reader_free(r);
	cr_assert_eq(sandbox_tar_reader_new(&r, 1 << 20, 100000, collect, &s), 0);
	cr_assert_eq(sandbox_tar_reader_feed(r, b.data, b.len), ERR_TOOBIG);
	sandbox_tar_reader_free(r);
	free(big);
	buf_free(&b);
}

Test(sandbox_tar, path_normalise)
{
	char out[64];

	cr_assert_eq(sandbox_tar_path_normalise(out, sizeof(out), "./a//b/./c/", 11), 0);
	cr_assert_str_eq(out, "a/b/c");
	cr_assert_eq(sandbox_tar_path_normalise(out, sizeof(out), ".", 1), ERR_INVALID);
	cr_assert_eq(sandbox_tar_path_normalise(out, sizeof(out), "a/../b", 6), ERR_INVALID);
	cr_assert_eq(sandbox_tar_path_normalise(out, sizeof(out), "a\0b", 3), ERR_INVALID);
	cr_assert_eq(sandbox_tar_path_normalise(out, 4, "abcdef", 6), ERR_INVALID);
}
