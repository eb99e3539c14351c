/* tests/data/test_folder.c - image folders: PNG (grey and RGB) and JPEG
 * files written by PIL through /usr/bin/python3, decoded by graft and
 * compared with PIL's own decoding; sorted class names, channel conversion,
 * resizing at load, and broken files failing with a message naming them. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];
static const char *py;

static int run_py(const char *code)
{
    char path[512];
    snprintf(path, sizeof path, "%s/gen.py", tmpdir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(code, f);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' gen.py", tmpdir, py);
    return system(cmd);
}

static int setup(void **state)
{
    (void)state;
    py = getenv("GRAFT_PYTHON");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/graft_test_folder_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes ok/{cat,ant,bee}/ images and ref.txt with PIL's decoding of each
 * file in graft's expected order (classes and files sorted). */
static const char *GEN =
    "import os\n"
    "from PIL import Image\n"
    "def img(mode, w, h, k):\n"
    "    im = Image.new(mode, (w, h))\n"
    "    px = im.load()\n"
    "    for y in range(h):\n"
    "        for x in range(w):\n"
    "            v = (x * 37 + y * 11 + k * 53) % 256\n"
    "            px[x, y] = v if mode == 'L' else (v, (v * 3) % 256, 255 - v)\n"
    "    return im\n"
    "for c in ('cat', 'ant', 'bee'):\n"
    "    os.makedirs('ok/' + c, exist_ok=True)\n"
    "img('RGB', 6, 4, 1).save('ok/ant/b.png')\n"
    "img('L', 6, 4, 2).save('ok/ant/a.png')\n"
    "img('RGB', 6, 4, 3).save('ok/bee/x.jpg', quality=95)\n"
    "img('L', 6, 4, 4).save('ok/cat/z.jpeg', quality=95)\n"
    "img('RGB', 6, 4, 5).save('ok/cat/y.PNG')\n"
    "open('ok/cat/notes.txt', 'w').write('ignored')\n"
    "with open('ref.txt', 'w') as f:\n"
    "    for p in ('ok/ant/a.png', 'ok/ant/b.png', 'ok/bee/x.jpg', 'ok/cat/y.PNG', 'ok/cat/z.jpeg'):\n"
    "        im = Image.open(p).convert('RGB')\n"
    "        f.write(' '.join(str(b) for b in im.tobytes()) + '\\n')\n"
    "os.makedirs('bad/one', exist_ok=True)\n"
    "img('L', 6, 4, 1).save('bad/one/good.png')\n"
    "data = open('ok/bee/x.jpg', 'rb').read()\n"
    "open('bad/one/zbroken.jpg', 'wb').write(data[:len(data) // 3])\n"
    "os.makedirs('bad2/one', exist_ok=True)\n"
    "data = open('ok/ant/b.png', 'rb').read()\n"
    "open('bad2/one/broken.png', 'wb').write(data[:40])\n"
    "os.makedirs('bad3/one', exist_ok=True)\n"
    "open('bad3/one/fake.png', 'w').write('not an image at all')\n"
    "os.makedirs('bad4/one', exist_ok=True)\n"
    "im = Image.new('RGB', (64, 64))\n"
    "im.putdata([((i * 7919) % 256, (i * 104729) % 256, (i * 31) % 256) for i in range(4096)])\n"
    "im.save('full.jpg', quality=95)\n"
    "data = open('full.jpg', 'rb').read()\n"
    "open('bad4/one/cut.jpg', 'wb').write(data[:len(data) * 3 // 4])\n";

static void test_folder(void **state)
{
    (void)state;
    if (!py || access(py, X_OK) != 0 || run_py(GEN) != 0)
        skip();
    char dir[512], ref[512];
    snprintf(dir, sizeof dir, "%s/ok", tmpdir);
    snprintf(ref, sizeof ref, "%s/ref.txt", tmpdir);
    graft_error err = {0};
    graft_dataset *ds = NULL;
    if (graft_data_load_folder(dir, 0, 0, 3, &ds, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(ds->n, 5);
    assert_int_equal(ds->n_classes, 3);
    assert_string_equal(ds->class_names[0], "ant");
    assert_string_equal(ds->class_names[1], "bee");
    assert_string_equal(ds->class_names[2], "cat");
    const int32_t labels[5] = {0, 0, 1, 2, 2};
    assert_memory_equal(ds->labels, labels, sizeof labels);
    assert_int_equal(ds->height, 4);
    assert_int_equal(ds->width, 6);
    assert_int_equal(ds->channels, 3);
    /* every pixel as PIL decodes it (JPEG decoders may differ by a little) */
    FILE *f = fopen(ref, "r");
    assert_non_null(f);
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < 4 * 6 * 3; k++) {
            int v;
            assert_int_equal(fscanf(f, "%d", &v), 1);
            int got = ds->pixels[i * 72 + k];
            if (abs(got - v) > 2)
                fail_msg("image %d byte %d: graft %d, PIL %d", i, k, got, v);
        }
    fclose(f);
    graft_dataset_destroy(ds);

    /* grey, resized at load */
    assert_int_equal(graft_data_load_folder(dir, 8, 12, 1, &ds, &err), GRAFT_OK);
    assert_int_equal(ds->height, 8);
    assert_int_equal(ds->width, 12);
    assert_int_equal(ds->channels, 1);
    graft_dataset_destroy(ds);

    /* broken files and folders: one line naming the file */
    const char *bad[4] = {"bad/one/zbroken.jpg", "bad2/one/broken.png", "bad3/one/fake.png",
                          "bad4/one/cut.jpg"};
    const char *roots[4] = {"bad", "bad2", "bad3", "bad4"};
    for (int i = 0; i < 4; i++) {
        snprintf(dir, sizeof dir, "%s/%s", tmpdir, roots[i]);
        ds = NULL;
        assert_int_not_equal(graft_data_load_folder(dir, 0, 0, 0, &ds, &err), GRAFT_OK);
        assert_null(ds);
        if (!strstr(err.msg, bad[i]))
            fail_msg("message '%s' does not name %s", err.msg, bad[i]);
        assert_null(strchr(err.msg, '\n'));
    }
    snprintf(dir, sizeof dir, "%s/missing", tmpdir);
    assert_int_equal(graft_data_load_folder(dir, 0, 0, 0, &ds, &err), GRAFT_ERR_IO);
    assert_non_null(strstr(err.msg, "missing"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_folder),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
