/* tests/conformance/conformance.c - runs graft over an ONNX backend test-data
 * folder (Debian's libonnx-testdata: data/node, data/pytorch-converted, ...):
 *
 *   conformance /usr/share/libonnx-testdata/data/node --suite node --tsv node.tsv
 *
 * Each case is a folder holding model.onnx and test_data_set_N/{input_K.pb,
 * output_K.pb}. Through graft's public API only, as `graft run` does it: import,
 * optimize for inference (unless --no-optimize), plan with the inputs' shapes,
 * run every data set and compare every output (element type, shape, values).
 *
 * Each case runs in a forked child with an alarm, so a crash or a hang is
 * recorded as `crash` and the run goes on. A case is
 *   pass         every output of every data set matches;
 *   unsupported  graft refuses it with GRAFT_ERR_UNSUPPORTED (an op, element
 *                type or attribute it says it does not handle);
 *   invalid      the test data contradicts the model (an input's shape is
 *                not the fixed shape the model declares; seen in ONNX 1.12's
 *                CastLike bfloat16 cases) and graft refuses it with
 *                GRAFT_ERR_SHAPE; or a window case (Hann, Hamming, Blackman)
 *                whose stored output is off the ONNX definition, which this
 *                runner computes itself in double, while graft's output
 *                matches it (ONNX 1.12's generator used pi = 3.1415): both
 *                checked here, independently of graft;
 *   fail         any other error status, or an output that differs;
 *   crash        a signal, a hang, or a child that exited without a result
 *                (e.g. a sanitizer report).
 * Prints one line per case that does not pass, a table of counts (with the
 * ops behind the unsupported cases), the same counts over the cases whose
 * every node is an op graft lists as supported (graft inspect --ops) and
 * whose inputs and outputs are not strings (a type graft does not claim),
 * with the reasons of those that do not pass, and the line
 *   conformance <suite>: N cases: P pass, F fail, U unsupported, I invalid, C crash
 * Exit status: 0 no fail and no crash, 1 otherwise, 2 bad command line, 77
 * the data folder is absent (CTest: skipped).
 *
 * Tolerances, |got - want| <= atol + rtol * |want| (numpy's allclose), per
 * stored element type: float32 and double rtol 1e-4 atol 1e-5 (graft computes
 * double in float32); float16 rtol 4e-3 atol 1e-3 and bfloat16 rtol 3e-2
 * atol 1e-2, after rounding graft's float32 result to that type; NaN equals
 * NaN, infinities must match exactly; integers (wrapped to the stored type, as
 * `graft run` writes them) and bool are exact. */
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "graft/graft.h"

#define MAX_IO 64
#define DETAIL_MAX 900
#define KEY_MAX 256

typedef enum { ST_PASS = 0, ST_FAIL, ST_UNSUPPORTED, ST_INVALID, ST_CRASH, ST_COUNT } case_status;
static const char *const status_names[ST_COUNT] = {"pass", "fail", "unsupported", "invalid",
                                                   "crash"};

/* What the child sends back through its pipe. */
typedef struct case_result {
    int status;
    char detail[DETAIL_MAX];
    char key[KEY_MAX]; /* unsupported: the ops (or element type/attribute) behind it, ", "-separated */
    bool claimed;      /* imported, every node an op graft lists, no string graph I/O */
} case_result;

typedef struct options {
    const char *dir, *suite, *tsv, *filter;
    int timeout;
    bool optimize, verbose;
} options;

/* ---- small helpers ---- */

/* snprintf that truncates quietly (case names and messages are short; a
 * truncated line is still a useful line). */
static void sfmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sfmt(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

static bool is_file(const char *p)
{
    struct stat s;
    return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}

static bool is_dir(const char *p)
{
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Subfolder names of dir starting with prefix (NULL: any), sorted; *n set. */
static char **list_dirs(const char *dir, const char *prefix, int *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char **v = NULL;
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || (prefix && strncmp(e->d_name, prefix, strlen(prefix))))
            continue;
        char p[4096];
        sfmt(p, sizeof p, "%s/%s", dir, e->d_name);
        if (!is_dir(p))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nv = realloc(v, (size_t)cap * sizeof *v);
            if (!nv)
                break;
            v = nv;
        }
        v[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (v)
        qsort(v, (size_t)*n, sizeof *v, cmp_str);
    return v;
}

static void free_list(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* test_data_set_N sorted by N (test_data_set_10 after _9). */
static int cmp_dataset(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    long nx = strtol(x + strlen("test_data_set_"), NULL, 10);
    long ny = strtol(y + strlen("test_data_set_"), NULL, 10);
    return nx < ny ? -1 : nx > ny;
}

/* Removes the folder part of the paths graft puts in its messages (they all
 * start with the case folder) so that lines stay short. */
static void shorten(char *msg, const char *case_dir)
{
    size_t n = strlen(case_dir);
    char *p;
    while ((p = strstr(msg, case_dir)) && p[n] == '/')
        memmove(p, p + n + 1, strlen(p + n + 1) + 1);
    for (p = msg; *p; p++)
        if (*p == '\t' || *p == '\n' || *p == '\r')
            *p = ' ';
}

static case_status set_err(case_result *r, const graft_error *err, graft_status st,
                           const char *what)
{
    r->status = st == GRAFT_ERR_UNSUPPORTED ? ST_UNSUPPORTED : ST_FAIL;
    sfmt(r->detail, sizeof r->detail, "%s: %s: %s", what, graft_status_name(st), err->msg);
    return (case_status)r->status;
}

/* ---- element access, whatever the tensor's dtype ---- */

static double elem_f(const graft_tensor *t, int64_t i);

/* Integer element types (and bool) as int64; floats truncated. */
static int64_t elem_i(const graft_tensor *t, int64_t i)
{
    const void *p = t->data;
    switch (t->dtype) {
    case GRAFT_INT64: case GRAFT_UINT64: return ((const int64_t *)p)[i];
    case GRAFT_UINT8: case GRAFT_BOOL: return ((const uint8_t *)p)[i];
    case GRAFT_INT8: return ((const int8_t *)p)[i];
    case GRAFT_UINT16: return ((const uint16_t *)p)[i];
    case GRAFT_INT16: return ((const int16_t *)p)[i];
    case GRAFT_INT32: return ((const int32_t *)p)[i];
    case GRAFT_UINT32: return ((const uint32_t *)p)[i];
    default: {
        double v = elem_f(t, i);
        return isfinite(v) ? (int64_t)v : INT64_MIN;
    }
    }
}

static double elem_f(const graft_tensor *t, int64_t i)
{
    const void *p = t->data;
    switch (t->dtype) {
    case GRAFT_FLOAT: return ((const float *)p)[i];
    case GRAFT_DOUBLE: return ((const double *)p)[i];
    case GRAFT_FLOAT16: return graft_fp16_to_f32(((const uint16_t *)p)[i]);
    case GRAFT_BFLOAT16: return graft_bf16_to_f32(((const uint16_t *)p)[i]);
    case GRAFT_UINT64: return (double)((const uint64_t *)p)[i];
    default: return graft_dtype_size(t->dtype) ? (double)elem_i(t, i) : NAN;
    }
}

/* An integer as the stored type holds it (what graft run writes). */
static int64_t wrap_int(int64_t v, graft_dtype dt)
{
    switch (dt) {
    case GRAFT_UINT8: return (uint8_t)v;
    case GRAFT_INT8: return (int8_t)v;
    case GRAFT_UINT16: return (uint16_t)v;
    case GRAFT_INT16: return (int16_t)v;
    case GRAFT_INT32: return (int32_t)v;
    case GRAFT_UINT32: return (uint32_t)v;
    case GRAFT_BOOL: return v != 0;
    default: return v;
    }
}

static double round_to(double v, graft_dtype dt)
{
    if (dt == GRAFT_FLOAT16)
        return graft_fp16_to_f32(graft_f32_to_fp16((float)v));
    if (dt == GRAFT_BFLOAT16)
        return graft_bf16_to_f32(graft_f32_to_bf16((float)v));
    return (float)v;
}

static void tolerance(graft_dtype dt, double *rtol, double *atol)
{
    switch (dt) {
    case GRAFT_FLOAT16: *rtol = 4e-3; *atol = 1e-3; break;
    case GRAFT_BFLOAT16: *rtol = 3e-2; *atol = 1e-2; break;
    default: *rtol = 1e-4; *atol = 1e-5; break;
    }
}

static void format_index(const graft_tensor *t, int64_t flat, char *buf, size_t size)
{
    int64_t idx[GRAFT_MAX_RANK];
    for (int d = t->rank - 1; d >= 0; d--) {
        idx[d] = t->dims[d] ? flat % t->dims[d] : 0;
        flat = t->dims[d] ? flat / t->dims[d] : 0;
    }
    graft_shape_format(t->rank, idx, buf, size);
}

/* Compares graft's output got (compute form) with want (compute form, stored
 * as dt). Returns true when they match; else msg says how. */
static bool compare(const graft_tensor *got, const graft_tensor *want, graft_dtype dt, char *msg,
                    size_t size)
{
    char a[128], b[128];
    if (got->rank != want->rank || memcmp(got->dims, want->dims, (size_t)got->rank * sizeof got->dims[0])) {
        sfmt(msg, size, "shape %s, expected %s", graft_shape_format(got->rank, got->dims, a, sizeof a),
                 graft_shape_format(want->rank, want->dims, b, sizeof b));
        return false;
    }
    int64_t n = graft_tensor_nelem(want);
    if (n > 0 && (!got->data || !want->data)) {
        sfmt(msg, size, "no data");
        return false;
    }
    int64_t n_bad = 0, worst = -1;
    if (graft_dtype_is_float(dt)) {
        double rtol, atol, max_abs = 0, max_rel = 0, worst_excess = -1;
        tolerance(dt, &rtol, &atol);
        for (int64_t i = 0; i < n; i++) {
            double g = round_to(elem_f(got, i), dt), w = elem_f(want, i);
            bool ok;
            double ad = 0;
            if (isnan(w) || isnan(g))
                ok = isnan(w) && isnan(g);
            else if (isinf(w) || isinf(g))
                ok = g == w;
            else {
                ad = fabs(g - w);
                ok = ad <= atol + rtol * fabs(w);
                if (ad > max_abs)
                    max_abs = ad;
                if (w != 0 && ad / fabs(w) > max_rel)
                    max_rel = ad / fabs(w);
            }
            if (!ok) {
                double excess = isfinite(ad) && ad > 0 ? ad / (atol + rtol * fabs(w)) : INFINITY;
                if (excess > worst_excess) {
                    worst_excess = excess;
                    worst = i;
                }
                n_bad++;
            }
        }
        if (!n_bad)
            return true;
        format_index(want, worst, a, sizeof a);
        sfmt(msg, size,
                 "%lld of %lld values off: max abs err %.3g, max rel err %.3g (rtol %g atol %g);"
                 " worst at %s: got %.9g, expected %.9g",
                 (long long)n_bad, (long long)n, max_abs, max_rel, rtol, atol, a,
                 round_to(elem_f(got, worst), dt), elem_f(want, worst));
        return false;
    }
    for (int64_t i = 0; i < n; i++) {
        if (wrap_int(elem_i(got, i), dt) != wrap_int(elem_i(want, i), dt)) {
            if (worst < 0)
                worst = i;
            n_bad++;
        }
    }
    if (!n_bad)
        return true;
    format_index(want, worst, a, sizeof a);
    sfmt(msg, size, "%lld of %lld values differ (exact compare); first at %s: got %lld, expected %lld",
             (long long)n_bad, (long long)n, a, (long long)wrap_int(elem_i(got, worst), dt),
             (long long)wrap_int(elem_i(want, worst), dt));
    return false;
}

/* The element type graft reports for graph output i: the declared one, or
 * (undeclared) the class of what it computed. */
static graft_dtype output_dtype(const graft_graph *g, int i, const graft_tensor *got)
{
    graft_dtype dt = g->values[g->outputs[i]].dtype;
    return dt != GRAFT_DTYPE_UNDEFINED ? dt : got->dtype;
}

/* ---- one case, in the child ---- */

/* ONNX test data up to 1.13 stores bfloat16 tensors as uint16 holding the
 * bits (numpy has no bfloat16): read in compute form that is int64; turn it
 * into the float32 values the bits stand for. */
static graft_status bf16_bits_to_f32(graft_tensor **t, graft_error *err)
{
    graft_tensor *f = NULL;
    graft_status st = graft_tensor_create(GRAFT_FLOAT, (*t)->rank, (*t)->dims, &f, err);
    if (st)
        return st;
    int64_t n = graft_tensor_nelem(f);
    for (int64_t i = 0; i < n; i++)
        graft_tensor_f32(f)[i] = graft_bf16_to_f32((uint16_t)elem_i(*t, i));
    graft_tensor_destroy(*t);
    *t = f;
    return GRAFT_OK;
}

/* Input `bad` cannot be read as a tensor (an optional or sequence value, say).
 * If graft refuses the model anyway when asked to plan it (with the declared
 * shape, or a scalar, for that input and those after it), its refusal decides
 * the case: graft would never have read that input. */
static void probe_plan(const graft_graph *g, int bad, case_result *r)
{
    graft_shape shapes[MAX_IO];
    graft_error err = {0};
    graft_plan *plan = NULL;
    int n = g->n_inputs < MAX_IO ? g->n_inputs : MAX_IO;
    for (int i = 0; i < n; i++) {
        const graft_value *v = &g->values[g->inputs[i]];
        shapes[i].rank = v->rank > 0 ? v->rank : 0;
        for (int d = 0; d < shapes[i].rank; d++)
            shapes[i].dims[d] = v->dims[d] > 0 ? v->dims[d] : 1;
    }
    graft_plan_options po = graft_plan_options_default();
    po.stored_training_form = true; /* ONNX's semantics or a clean refusal */
    graft_status st = graft_plan_create(g, &po, n, shapes, &plan, &err);
    graft_plan_destroy(plan);
    if (st == GRAFT_ERR_UNSUPPORTED) {
        set_err(r, &err, st, "plan");
        char ops[KEY_MAX];
        if (graft_graph_unsupported_ops(g, NULL, 0, ops, sizeof ops) > 0)
            sfmt(r->key, sizeof r->key, "%s", ops);
        size_t len = strlen(r->detail);
        sfmt(r->detail + len, sizeof r->detail - len, " (input_%d.pb is no tensor graft reads)", bad);
    }
}

/* The ONNX definition of the window a *window* case computes (HannWindow,
 * HammingWindow, BlackmanWindow; periodic unless the case is _symmetric),
 * in double, for size taken from the case's input: y[n] = a0 - a1 cos(2 pi
 * n / M) + a2 cos(4 pi n / M), M = size (periodic) or size - 1. False when
 * the case is not a window case this knows. */
static bool window_definition(const char *case_dir, const graft_tensor *size_in, double *y,
                              int64_t cap, int64_t *n)
{
    const char *name = strrchr(case_dir, '/');
    name = name ? name + 1 : case_dir;
    double a0, a1, a2 = 0;
    if (strstr(name, "hannwindow"))
        a0 = 0.5, a1 = 0.5;
    else if (strstr(name, "hammingwindow"))
        a0 = 25.0 / 46.0, a1 = 21.0 / 46.0;
    else if (strstr(name, "blackmanwindow"))
        a0 = 0.42, a1 = 0.5, a2 = 0.08;
    else
        return false;
    if (!size_in || graft_tensor_nelem(size_in) != 1 || size_in->dtype != GRAFT_INT64)
        return false;
    int64_t size = graft_tensor_i64(size_in)[0];
    double m = strstr(name, "symmetric") ? (double)(size - 1) : (double)size;
    if (size < 2 || size > cap)
        return false;
    const double pi = 3.14159265358979323846;
    for (int64_t i = 0; i < size; i++)
        y[i] = a0 - a1 * cos(2 * pi * (double)i / m) + a2 * cos(4 * pi * (double)i / m);
    *n = size;
    return true;
}

/* Within float32 tolerance of the definition (rtol 1e-4, atol 1e-5)? */
static bool near_definition(const graft_tensor *t, const double *y, int64_t n)
{
    if (!t || t->dtype != GRAFT_FLOAT || graft_tensor_nelem(t) != n)
        return false;
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(graft_tensor_f32(t)[i] - y[i]) <= 1e-5 + 1e-4 * fabs(y[i])))
            return false;
    return true;
}

static void run_dataset(const options *o, const char *case_dir, const graft_graph *g,
                        const graft_graph *exec_g, const char *ds, case_result *r)
{
    char path[4096], name[256];
    graft_error err = {0};
    graft_tensor *in[MAX_IO] = {0}, *feeds[MAX_IO] = {0};
    char in_names[MAX_IO][256];
    graft_shape shapes[MAX_IO];
    graft_plan *plan = NULL;
    graft_status st;
    int n_in = 0;
    (void)o;

    for (;; n_in++) {
        sfmt(path, sizeof path, "%s/%s/input_%d.pb", case_dir, ds, n_in);
        if (!is_file(path))
            break;
        if (n_in == MAX_IO) {
            r->status = ST_FAIL;
            sfmt(r->detail, sizeof r->detail, "%s: more than %d inputs", ds, MAX_IO);
            goto done;
        }
        sfmt(name, sizeof name, "%s input_%d.pb", ds, n_in);
        in_names[n_in][0] = '\0';
        graft_dtype src_dt = GRAFT_DTYPE_UNDEFINED;
        st = graft_onnx_read_tensor_file(path, &in[n_in], &src_dt, in_names[n_in],
                                         sizeof in_names[n_in], &err);
        if (st) {
            set_err(r, &err, st, name);
            if (st != GRAFT_ERR_UNSUPPORTED && n_in < g->n_inputs)
                probe_plan(exec_g, n_in, r);
            goto done;
        }
        if (n_in < g->n_inputs && g->values[g->inputs[n_in]].dtype == GRAFT_BFLOAT16 &&
            src_dt == GRAFT_UINT16 && (st = bf16_bits_to_f32(&in[n_in], &err))) {
            set_err(r, &err, st, name);
            goto done;
        }
    }
    if (n_in != g->n_inputs) {
        r->status = ST_FAIL;
        sfmt(r->detail, sizeof r->detail, "%s: %d input files, graft sees %d graph inputs", ds,
                 n_in, g->n_inputs);
        goto done;
    }
    /* by name when every file names a graph input, else in order */
    bool by_name = true;
    for (int i = 0; i < n_in && by_name; i++) {
        int hits = 0;
        for (int k = 0; k < n_in; k++)
            hits += strcmp(in_names[k], g->values[g->inputs[i]].name) == 0;
        by_name = hits == 1;
    }
    for (int i = 0; i < n_in; i++) {
        feeds[i] = in[i];
        for (int k = 0; by_name && k < n_in; k++)
            if (!strcmp(in_names[k], g->values[g->inputs[i]].name))
                feeds[i] = in[k];
        shapes[i].rank = feeds[i]->rank;
        memcpy(shapes[i].dims, feeds[i]->dims, sizeof shapes[i].dims);
    }
    /* Integer and bool inputs are given to the plan when it is built (shape
     * inputs of Reshape, Expand, ... that the test takes as graph inputs). */
    const graft_tensor *known[MAX_IO] = {0};
    for (int i = 0; i < n_in; i++)
        if (!graft_dtype_is_float(g->values[g->inputs[i]].dtype))
            known[i] = feeds[i];
    graft_plan_options po = graft_plan_options_default();
    po.stored_training_form = true; /* ONNX's semantics or a clean refusal */
    po.feed_values = known;
    st = graft_plan_create(exec_g, &po, n_in, shapes, &plan, &err);
    if (st == GRAFT_ERR_UNSUPPORTED) {
        /* e.g. Resize's scales as a float graph input: graft needs it when
         * the plan is built; give it every input's data then */
        graft_error err2 = {0};
        for (int i = 0; i < n_in; i++)
            known[i] = feeds[i];
        if (graft_plan_create(exec_g, &po, n_in, shapes, &plan, &err2) == GRAFT_OK)
            st = GRAFT_OK;
    }
    if (st == GRAFT_ERR_SHAPE) {
        for (int i = 0; i < n_in; i++) {
            const graft_value *v = &g->values[g->inputs[i]];
            bool contradicts = v->rank >= 0 && v->rank != shapes[i].rank;
            for (int d = 0; !contradicts && v->rank >= 0 && d < v->rank; d++)
                contradicts = v->dims[d] >= 0 && v->dims[d] != shapes[i].dims[d];
            if (contradicts && strstr(err.msg, v->name)) {
                set_err(r, &err, st, "plan (test data contradicts the model)");
                r->status = ST_INVALID;
                goto done;
            }
        }
    }
    if (st) {
        set_err(r, &err, st, "plan");
        char ops[KEY_MAX];
        if (st == GRAFT_ERR_UNSUPPORTED && graft_graph_unsupported_ops(exec_g, NULL, 0, ops, sizeof ops) > 0)
            sfmt(r->key, sizeof r->key, "%s", ops);
        goto done;
    }
    if ((st = graft_plan_run(plan, (const graft_tensor *const *)feeds, &err))) {
        sfmt(name, sizeof name, "%s run", ds);
        set_err(r, &err, st, name);
        goto done;
    }
    int n_out = 0;
    for (;; n_out++) {
        sfmt(path, sizeof path, "%s/%s/output_%d.pb", case_dir, ds, n_out);
        if (!is_file(path))
            break;
    }
    if (n_out != graft_plan_n_outputs(plan) || n_out != g->n_outputs) {
        r->status = ST_FAIL;
        sfmt(r->detail, sizeof r->detail, "%s: %d output files, graft gives %d outputs", ds,
                 n_out, graft_plan_n_outputs(plan));
        goto done;
    }
    for (int i = 0; i < n_out; i++) {
        graft_tensor *want = NULL;
        graft_dtype want_dt = GRAFT_DTYPE_UNDEFINED;
        sfmt(path, sizeof path, "%s/%s/output_%d.pb", case_dir, ds, i);
        sfmt(name, sizeof name, "%s output_%d.pb", ds, i);
        if ((st = graft_onnx_read_tensor_file(path, &want, &want_dt, NULL, 0, &err))) {
            set_err(r, &err, st, name);
            goto done;
        }
        if (want_dt == GRAFT_UINT16 && g->values[g->outputs[i]].dtype == GRAFT_BFLOAT16) {
            if ((st = bf16_bits_to_f32(&want, &err))) {
                graft_tensor_destroy(want);
                set_err(r, &err, st, name);
                goto done;
            }
            want_dt = GRAFT_BFLOAT16;
        }
        const graft_tensor *got = graft_plan_output(plan, i);
        char why[600];
        bool ok = true;
        graft_dtype got_dt = got ? output_dtype(g, i, got) : GRAFT_DTYPE_UNDEFINED;
        if (!got) {
            ok = false;
            sfmt(why, sizeof why, "no output tensor");
        } else if (got_dt != want_dt) {
            ok = false;
            sfmt(why, sizeof why, "element type %s, expected %s", graft_dtype_name(got_dt),
                     graft_dtype_name(want_dt));
        } else {
            ok = compare(got, want, want_dt, why, sizeof why);
        }
        double def[256];
        int64_t n_def = 0;
        bool bad_data = !ok && n_in == 1 && n_out == 1 &&
                        window_definition(case_dir, feeds[0], def, 256, &n_def) &&
                        near_definition(got, def, n_def) && !near_definition(want, def, n_def);
        graft_tensor_destroy(want);
        if (bad_data) {
            r->status = ST_INVALID;
            sfmt(r->detail, sizeof r->detail,
                 "%s output %d: the stored output is off the ONNX definition of the window "
                 "(computed here in double), which graft's output matches: %s",
                 ds, i, why);
            goto done;
        }
        if (!ok) {
            r->status = ST_FAIL;
            sfmt(r->detail, sizeof r->detail, "%s output %d '%s' (%s): %s", ds, i,
                     g->values[g->outputs[i]].name, graft_dtype_name(want_dt), why);
            goto done;
        }
    }
done:
    graft_plan_destroy(plan);
    for (int i = 0; i < n_in; i++)
        graft_tensor_destroy(in[i]);
}

static void run_case(const options *o, const char *case_dir, case_result *r)
{
    char path[4096];
    graft_error err = {0};
    graft_graph *g = NULL, *opt = NULL;
    graft_status st;
    int n_ds = 0;
    char **ds = NULL;

    memset(r, 0, sizeof *r);
    r->status = ST_PASS;
    sfmt(path, sizeof path, "%s/model.onnx", case_dir);
    if ((st = graft_onnx_import_file(path, NULL, &g, &err))) {
        set_err(r, &err, st, "import");
        goto done;
    }
    char none[8];
    r->claimed = graft_graph_unsupported_ops(g, NULL, 0, none, sizeof none) == 0;
    /* graft claims no string type (docs/OPS.md) */
    for (int32_t k = 0; k < g->n_inputs; k++)
        r->claimed &= g->values[g->inputs[k]].dtype != GRAFT_STRING;
    for (int32_t k = 0; k < g->n_outputs; k++)
        r->claimed &= g->values[g->outputs[k]].dtype != GRAFT_STRING;
    const graft_graph *exec_g = g;
    if (o->optimize) {
        int n_rewrites = 0;
        if ((st = graft_graph_clone(g, &opt, &err)) ||
            (st = graft_passes_optimize_for_inference(opt, &n_rewrites, &err))) {
            set_err(r, &err, st, "optimize");
            goto done;
        }
        exec_g = opt;
    }
    ds = list_dirs(case_dir, "test_data_set_", &n_ds);
    if (!n_ds) {
        r->status = ST_FAIL;
        sfmt(r->detail, sizeof r->detail, "no test_data_set_N folder");
        goto done;
    }
    qsort(ds, (size_t)n_ds, sizeof *ds, cmp_dataset);
    for (int k = 0; k < n_ds && r->status == ST_PASS; k++)
        run_dataset(o, case_dir, g, exec_g, ds[k], r);
    if (r->status == ST_UNSUPPORTED && !r->key[0]) {
        char ops[KEY_MAX];
        if (graft_graph_unsupported_ops(exec_g, NULL, 0, ops, sizeof ops) > 0)
            sfmt(r->key, sizeof r->key, "%s", ops);
    }
done:
    if (r->status == ST_UNSUPPORTED && !r->key[0]) {
        /* not an op: name the reason by the message, without the node name */
        const char *m = strstr(r->detail, "ERR_UNSUPPORTED: ");
        m = m ? m + strlen("ERR_UNSUPPORTED: ") : r->detail;
        const char *c = strrchr(m, ':');
        sfmt(r->key, sizeof r->key, "(%s)", c && c[1] ? c + 2 : m);
    }
    shorten(r->detail, case_dir);
    free_list(ds, n_ds);
    graft_graph_destroy(opt);
    graft_graph_destroy(g);
}

/* ---- the parent: fork per case ---- */

static void run_forked(const options *o, const char *case_dir, case_result *r)
{
    int fd[2];
    memset(r, 0, sizeof *r);
    fflush(stdout);
    fflush(stderr);
    if (pipe(fd) != 0) {
        r->status = ST_CRASH;
        sfmt(r->detail, sizeof r->detail, "pipe: %s", strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        r->status = ST_CRASH;
        sfmt(r->detail, sizeof r->detail, "fork: %s", strerror(errno));
        close(fd[0]);
        close(fd[1]);
        return;
    }
    if (pid == 0) {
        close(fd[0]);
        alarm((unsigned)o->timeout);
        case_result res;
        run_case(o, case_dir, &res);
        const char *p = (const char *)&res;
        size_t left = sizeof res;
        while (left) {
            ssize_t w = write(fd[1], p, left);
            if (w <= 0)
                _exit(3);
            p += w;
            left -= (size_t)w;
        }
        _exit(0);
    }
    close(fd[1]);
    size_t got = 0;
    char *p = (char *)r;
    for (;;) {
        ssize_t n = read(fd[0], p + got, sizeof *r - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == sizeof *r)
            break;
    }
    close(fd[0]);
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(ws)) {
        int sig = WTERMSIG(ws);
        memset(r, 0, sizeof *r);
        r->status = ST_CRASH;
        if (sig == SIGALRM)
            sfmt(r->detail, sizeof r->detail, "timeout: still running after %d s", o->timeout);
        else
            sfmt(r->detail, sizeof r->detail, "killed by signal %d (%s)", sig, strsignal(sig));
    } else if (got != sizeof *r || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        memset(r, 0, sizeof *r);
        r->status = ST_CRASH;
        sfmt(r->detail, sizeof r->detail,
                 "exited with status %d without a result (sanitizer report on stderr?)",
                 WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
    }
    r->detail[DETAIL_MAX - 1] = r->key[KEY_MAX - 1] = '\0';
}

/* ---- counting the ops behind unsupported cases ---- */

typedef struct key_count {
    char name[KEY_MAX];
    int n;
} key_count;

static void count_keys(key_count **v, int *n, int *cap, const char *keys)
{
    char buf[KEY_MAX];
    sfmt(buf, sizeof buf, "%s", keys);
    /* a "(reason)" key is one entry; an op list is split at ", " */
    bool split = buf[0] != '(';
    char *save = NULL;
    for (char *k = split ? strtok_r(buf, ",", &save) : buf; k;
         k = split ? strtok_r(NULL, ",", &save) : NULL) {
        while (*k == ' ')
            k++;
        int j = 0;
        while (j < *n && strcmp((*v)[j].name, k))
            j++;
        if (j == *n) {
            if (*n == *cap) {
                *cap = *cap ? 2 * *cap : 32;
                key_count *nv = realloc(*v, (size_t)*cap * sizeof **v);
                if (!nv)
                    return;
                *v = nv;
            }
            sfmt((*v)[j].name, sizeof (*v)[j].name, "%s", k);
            (*v)[j].n = 0;
            (*n)++;
        }
        (*v)[j].n++;
        if (!split)
            break;
    }
}

static int cmp_count(const void *a, const void *b)
{
    const key_count *x = a, *y = b;
    return x->n != y->n ? y->n - x->n : strcmp(x->name, y->name);
}

static void mkdirs_for(const char *file)
{
    char p[4096];
    sfmt(p, sizeof p, "%s", file);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0777);
            *s = '/';
        }
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: conformance DIR [--suite NAME] [--tsv FILE] [--timeout SECONDS]"
                    " [--filter SUBSTRING] [--no-optimize] [--verbose]\n");
    return 2;
}

int main(int argc, char **argv)
{
    options o = {.timeout = 60, .optimize = true};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "--suite") && has_val)
            o.suite = argv[++i];
        else if (!strcmp(a, "--tsv") && has_val)
            o.tsv = argv[++i];
        else if (!strcmp(a, "--filter") && has_val)
            o.filter = argv[++i];
        else if (!strcmp(a, "--timeout") && has_val)
            o.timeout = atoi(argv[++i]);
        else if (!strcmp(a, "--no-optimize"))
            o.optimize = false;
        else if (!strcmp(a, "--verbose"))
            o.verbose = true;
        else if (a[0] != '-' && !o.dir)
            o.dir = a;
        else
            return usage();
    }
    if (!o.dir || o.timeout <= 0)
        return usage();
    if (!o.suite) {
        const char *s = strrchr(o.dir, '/');
        o.suite = s && s[1] ? s + 1 : o.dir;
    }
    if (!is_dir(o.dir)) {
        printf("conformance %s: %s not found (Debian package libonnx-testdata): skipped\n", o.suite,
               o.dir);
        return 77;
    }
    int n_cases = 0;
    char **cases = list_dirs(o.dir, NULL, &n_cases);
    FILE *tsv = NULL;
    if (o.tsv) {
        mkdirs_for(o.tsv);
        if (!(tsv = fopen(o.tsv, "w"))) {
            fprintf(stderr, "conformance: cannot write %s: %s\n", o.tsv, strerror(errno));
            free_list(cases, n_cases);
            return 2;
        }
        fprintf(tsv, "case\tstatus\tdetail\n");
    }
    int counts[ST_COUNT] = {0}, n_run = 0, claimed[ST_COUNT] = {0}, n_claimed = 0;
    key_count *keys = NULL, *ckeys = NULL;
    int n_keys = 0, cap_keys = 0, n_ckeys = 0, cap_ckeys = 0;
    for (int i = 0; i < n_cases; i++) {
        char case_dir[4096], model[4200];
        sfmt(case_dir, sizeof case_dir, "%s/%s", o.dir, cases[i]);
        sfmt(model, sizeof model, "%s/model.onnx", case_dir);
        if (!is_file(model) || (o.filter && !strstr(cases[i], o.filter)))
            continue;
        case_result r;
        run_forked(&o, case_dir, &r);
        n_run++;
        counts[r.status]++;
        if (r.status == ST_UNSUPPORTED)
            count_keys(&keys, &n_keys, &cap_keys, r.key);
        if (r.claimed) {
            n_claimed++;
            claimed[r.status]++;
            if (r.status != ST_PASS) {
                /* the reason: the unsupported key (already "(...)"), else the status */
                char why[KEY_MAX];
                if (r.status == ST_UNSUPPORTED && r.key[0] == '(')
                    sfmt(why, sizeof why, "(unsupported: %s", r.key + 1);
                else if (r.status == ST_INVALID && strstr(r.detail, "ONNX definition"))
                    sfmt(why, sizeof why, "(invalid: stored window output off the definition)");
                else if (r.status == ST_INVALID)
                    sfmt(why, sizeof why, "(invalid: the test data contradicts the model)");
                else
                    sfmt(why, sizeof why, "(%s: %s)", status_names[r.status], cases[i]);
                count_keys(&ckeys, &n_ckeys, &cap_ckeys, why);
            }
        }
        if (r.status != ST_PASS || o.verbose)
            printf("%-11s %s: %s\n", status_names[r.status], cases[i],
                   r.status == ST_PASS ? "ok" : r.detail);
        if (tsv)
            fprintf(tsv, "%s\t%s\t%s\n", cases[i], status_names[r.status], r.detail);
    }
    if (tsv)
        fclose(tsv);

    printf("\n%-12s %5s\n", "status", "cases");
    for (int s = 0; s < ST_COUNT; s++)
        printf("%-12s %5d\n", status_names[s], counts[s]);
    if (n_keys) {
        qsort(keys, (size_t)n_keys, sizeof *keys, cmp_count);
        printf("\nunsupported, by op (or reason)        cases\n");
        for (int k = 0; k < n_keys; k++)
            printf("  %-36s %5d\n", keys[k].name, keys[k].n);
    }
    printf("\nclaimed ops (every node an op graft lists, no strings): %d cases: %d pass, %d fail, "
           "%d unsupported, %d invalid, %d crash\n",
           n_claimed, claimed[ST_PASS], claimed[ST_FAIL], claimed[ST_UNSUPPORTED],
           claimed[ST_INVALID], claimed[ST_CRASH]);
    if (n_ckeys) {
        qsort(ckeys, (size_t)n_ckeys, sizeof *ckeys, cmp_count);
        for (int k = 0; k < n_ckeys; k++)
            printf("  %-70s %5d\n", ckeys[k].name, ckeys[k].n);
    }
    if (o.tsv)
        printf("\nper-case table: %s\n", o.tsv);
    printf("conformance %s: %d cases: %d pass, %d fail, %d unsupported, %d invalid, %d crash\n",
           o.suite, n_run, counts[ST_PASS], counts[ST_FAIL], counts[ST_UNSUPPORTED],
           counts[ST_INVALID], counts[ST_CRASH]);
    free(keys);
    free(ckeys);
    free_list(cases, n_cases);
    return counts[ST_FAIL] || counts[ST_CRASH] ? 1 : 0;
}
