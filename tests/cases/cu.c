/* The conformance drivers' toolkit (see cu.h). */
#include "cu.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lightops_util.h"

int cu_failures;

void cu_fail_at(const char *file, int line, const char *fmt, ...)
{
    const char *base = strrchr(file, '/');
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL (%s:%d) ", base ? base + 1 : file, line);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    cu_failures++;
}

void cu_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  .. ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

static char **kept;
static size_t n_kept;

static void keep_cleanup(void)
{
    for (size_t i = 0; i < n_kept; i++)
        free(kept[i]);
    free(kept);
}

const char *cu_keep(const char *s)
{
    if (!kept)
        atexit(keep_cleanup);
    char **k = realloc(kept, sizeof *kept * (n_kept + 1));
    if (!k)
        abort();
    kept = k;
    kept[n_kept] = strdup(s);
    return kept[n_kept++];
}

const char *cu_fmt(const char *fmt, ...)
{
    static char bufs[8][4096];
    static int k;
    char *b = bufs[k++ & 7];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof bufs[0], fmt, ap);
    va_end(ap);
    return b;
}

bool cu_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

const char *cu_shared(void)
{
    const char *s = getenv("GRAFT_SHARED_DIR");
    if (!s || !*s || !cu_exists(cu_fmt("%s/cases/INDEX.md", s)) ||
        !cu_exists(cu_fmt("%s/models/README.md", s)))
        return NULL;
    return s;
}

static char work_dir[4096];

static void work_cleanup(void)
{
    if (work_dir[0] && !getenv("CU_KEEP"))
        cu_sh("rm -rf '%s'", work_dir);
}

const char *cu_work(void)
{
    if (!work_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(work_dir, sizeof work_dir, "%s/graft-cases-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(work_dir)) {
            perror("mkdtemp");
            exit(1);
        }
        atexit(work_cleanup);
    }
    return work_dir;
}

const char *cu_case_dir(const char *id)
{
    static char buf[4][8192];
    static int k;
    const char *s = cu_shared();
    if (!s)
        return NULL;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/cases", s);
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    size_t n = strlen(id);
    char *out = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, id, n) == 0 && e->d_name[n] == '_') {
            out = buf[k++ & 3];
            snprintf(out, sizeof buf[0], "%s/%s", dir, e->d_name);
            break;
        }
    }
    closedir(d);
    return out;
}

int cu_sh(const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    fflush(stdout);
    int rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc))
        return -1;
    return WEXITSTATUS(rc);
}

int cu_run_capture(const char *cmd, const char *out_file)
{
    fflush(stdout);
    char full[16384];
    /* the shell reports a signal death of its child as 128+n */
    snprintf(full, sizeof full, "%s >'%s' 2>&1", cmd, out_file);
    int rc = system(full);
    if (rc == -1 || !WIFEXITED(rc))
        return -1;
    rc = WEXITSTATUS(rc);
    return rc >= 128 ? -1 : rc;
}

char *cu_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)(n > 0 ? n : 0) + 1);
    if (b && n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n > 0 ? n : 0] = 0;
        if (len)
            *len = (size_t)(n > 0 ? n : 0);
    }
    return b;
}

static bool ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

bool cu_has_token(const char *msg, const char *tok)
{
    size_t n = strlen(tok);
    for (const char *p = msg; (p = strstr(p, tok)); p++) {
        bool left = p == msg || !ident_char(p[-1]) || !ident_char(tok[0]);
        bool right = !ident_char(p[n]) || !ident_char(tok[n - 1]);
        if (left && right)
            return true;
    }
    return false;
}

void cu_check_message(const char *what, const char *msg, const char *const *needles)
{
    CU_CHECK(msg && *msg, "%s: empty error message", what);
    if (!msg || !*msg)
        return;
    CU_CHECK(!strchr(msg, '\n'), "%s: message is not one line: %s", what, msg);
    for (int i = 0; needles && needles[i]; i++)
        CU_CHECK(cu_has_token(msg, needles[i]), "%s: message does not name '%s': %s", what,
                 needles[i], msg);
}

graft_graph *cu_import(const char *path, graft_error *err)
{
    graft_graph *g = NULL;
    if (graft_onnx_import_file(path, NULL, &g, err) != GRAFT_OK)
        return NULL;
    return g;
}

cu_tol cu_tol_cases(void) { return (cu_tol){1e-4, 2e-2, false, 0}; }
cu_tol cu_tol_models(void) { return (cu_tol){1e-4, 1e-3, true, 0}; }

bool cu_compare(const char *what_in, const graft_tensor *got, const char *ref_in, const cu_tol *tol)
{
    /* callers pass cu_fmt buffers, which later cu_fmt calls recycle */
    char what[1024], ref_path[4096];
    snprintf(what, sizeof what, "%s", what_in);
    snprintf(ref_path, sizeof ref_path, "%s", ref_in);
    graft_tensor *ref = lt_read_pb(ref_path);
    graft_dtype src = GRAFT_DTYPE_UNDEFINED;
    graft_tensor *tmp = NULL;
    graft_error err = {0};
    /* the stored element type decides the tolerance; graft's reader only says which */
    if (graft_onnx_read_tensor_file(ref_path, &tmp, &src, NULL, 0, &err) == GRAFT_OK)
        graft_tensor_destroy(tmp);
    bool ok = false;
    if (!ref) {
        CU_CHECK(0, "%s: cannot read reference %s", what, ref_path);
        return false;
    }
    char a[128], b[128];
    graft_shape_format(got->rank, got->dims, a, sizeof a);
    graft_shape_format(ref->rank, ref->dims, b, sizeof b);
    if (got->rank != ref->rank || memcmp(got->dims, ref->dims, sizeof(int64_t) * (size_t)got->rank)) {
        CU_CHECK(0, "%s: shape %s, reference %s", what, a, b);
        goto done;
    }
    int64_t n = graft_tensor_nelem(ref);
    if (ref->dtype == GRAFT_FLOAT) {
        if (got->dtype != GRAFT_FLOAT) {
            CU_CHECK(0, "%s: got dtype %s, reference float", what, graft_dtype_name(got->dtype));
            goto done;
        }
        const float *x = graft_tensor_f32(got), *r = graft_tensor_f32(ref);
        double maxref = 0, maxd = 0;
        int64_t worst = 0;
        bool nan_bad = false;
        for (int64_t i = 0; i < n; i++) {
            if (isnan(r[i]) || isnan(x[i])) {
                nan_bad |= isnan(r[i]) != isnan(x[i]);
                continue;
            }
            if (isinf(r[i]) || isinf(x[i])) {
                nan_bad |= r[i] != x[i];
                continue;
            }
            maxref = fmax(maxref, fabs(r[i]));
            double d = fabs((double)x[i] - r[i]);
            if (d > maxd) {
                maxd = d;
                worst = i;
            }
        }
        double lim;
        if (src == GRAFT_FLOAT16 || src == GRAFT_BFLOAT16)
            lim = tol->f16_relative ? tol->abs_f16 * maxref : tol->abs_f16;
        else
            lim = tol->rel_f32 * maxref;
        lim = fmax(lim, 1e-7); /* an all-zero reference still allows float noise */
        if (tol->abs_f32 > 0 && src != GRAFT_FLOAT16 && src != GRAFT_BFLOAT16)
            lim = tol->abs_f32;
        ok = !nan_bad && maxd <= lim;
        CU_CHECK(!nan_bad, "%s: NaN/Inf pattern differs from the reference", what);
        CU_CHECK(maxd <= lim, "%s: max|diff| %.3g > %.3g (at %lld: got %.7g, ref %.7g; max|ref| %.4g)",
                 what, maxd, lim, (long long)worst, x[worst], r[worst], maxref);
    } else {
        /* integers and bool: exact */
        graft_tensor *gi = NULL;
        const graft_tensor *cmp = got;
        if (got->dtype != ref->dtype) {
            CU_CHECK(0, "%s: got dtype %s, reference %s", what, graft_dtype_name(got->dtype),
                     graft_dtype_name(ref->dtype));
            goto done;
        }
        size_t es = graft_dtype_size(ref->dtype);
        ok = n == 0 || memcmp(cmp->data, ref->data, (size_t)n * es) == 0;
        CU_CHECK(ok, "%s: %s values differ from the reference", what, graft_dtype_name(ref->dtype));
        graft_tensor_destroy(gi);
    }
done:
    graft_tensor_destroy(ref);
    return ok;
}

int cu_read_inputs(const char *set_in, graft_tensor **t, int max)
{
    char set_dir[4096];
    snprintf(set_dir, sizeof set_dir, "%s", set_in);
    int n = 0;
    for (; n < max; n++) {
        const char *p = cu_fmt("%s/input_%d.pb", set_dir, n);
        if (!cu_exists(p))
            break;
        graft_error err = {0};
        t[n] = NULL;
        if (graft_onnx_read_tensor_file(p, &t[n], NULL, NULL, 0, &err) != GRAFT_OK) {
            CU_CHECK(0, "reading %s: %s", p, err.msg);
            for (int i = 0; i < n; i++)
                graft_tensor_destroy(t[i]);
            return -1;
        }
    }
    return n;
}

graft_tensor *cu_forward(const graft_graph *g, int n_in, graft_tensor *const *in, int32_t fetch,
                         bool training, graft_error *err)
{
    graft_shape sh[16];
    for (int i = 0; i < n_in; i++) {
        sh[i].rank = in[i]->rank;
        memcpy(sh[i].dims, in[i]->dims, sizeof sh[i].dims);
    }
    graft_plan_options o = graft_plan_options_default();
    o.training = training;
    if (fetch >= 0) {
        o.fetches = &fetch;
        o.n_fetches = 1;
    }
    graft_plan *p = NULL;
    graft_tensor *out = NULL;
    if (graft_plan_create(g, &o, n_in, sh, &p, err) != GRAFT_OK)
        return NULL;
    if (graft_plan_run(p, (const graft_tensor *const *)in, err) == GRAFT_OK)
        graft_tensor_clone(graft_plan_output(p, 0), &out, err);
    graft_plan_destroy(p);
    return out;
}

bool cu_run_set(const graft_graph *g, const char *set_in, const cu_tol *tol)
{
    char set_dir[4096];
    snprintf(set_dir, sizeof set_dir, "%s", set_in);
    graft_tensor *in[16];
    int n_in = cu_read_inputs(set_dir, in, 16);
    if (n_in < 0)
        return false;
    const char *set = strrchr(set_dir, '/');
    set = set ? set + 1 : set_dir;
    bool ok = true;
    CU_CHECK(n_in == g->n_inputs, "%s: %d input files, graph has %d real inputs", set, n_in,
             g->n_inputs);
    if (n_in != g->n_inputs) {
        ok = false;
        goto out;
    }
    graft_shape sh[16];
    for (int i = 0; i < n_in; i++) {
        sh[i].rank = in[i]->rank;
        memcpy(sh[i].dims, in[i]->dims, sizeof sh[i].dims);
    }
    graft_plan_options o = graft_plan_options_default();
    graft_plan *p = NULL;
    graft_error err = {0};
    if (graft_plan_create(g, &o, n_in, sh, &p, &err) != GRAFT_OK) {
        CU_CHECK(0, "%s: plan: %s", set, err.msg);
        ok = false;
        /* for the report: which outputs are right on their own */
        for (int i = 0; i < g->n_outputs && g->n_outputs > 1; i++) {
            graft_error e2 = {0};
            graft_tensor *y = cu_forward(g, n_in, in, g->outputs[i], false, &e2);
            const char *ref = cu_fmt("%s/output_%d.pb", set_dir, i);
            if (!y || !cu_exists(ref)) {
                printf("    output %d (%s) alone: %s\n", i, g->values[g->outputs[i]].name,
                       y ? "no reference" : e2.msg);
            } else {
                int before = cu_failures;
                bool good = cu_compare(cu_fmt("%s/output_%d (%s) alone", set, i,
                                              g->values[g->outputs[i]].name),
                                       y, ref, tol);
                cu_failures = before + !good; /* mismatches count; the info line does not */
                if (good)
                    printf("    output %d (%s) alone: matches\n", i, g->values[g->outputs[i]].name);
            }
            graft_tensor_destroy(y);
        }
        goto out;
    }
    if (graft_plan_run(p, (const graft_tensor *const *)in, &err) != GRAFT_OK) {
        CU_CHECK(0, "%s: run: %s", set, err.msg);
        ok = false;
    } else {
        int n_out = graft_plan_n_outputs(p);
        int n_ref = 0;
        while (cu_exists(cu_fmt("%s/output_%d.pb", set_dir, n_ref)))
            n_ref++;
        CU_CHECK(n_ref == n_out, "%s: %d graph outputs, %d reference outputs", set, n_out, n_ref);
        for (int i = 0; i < n_out && i < n_ref; i++) {
            const char *what = cu_fmt("%s/output_%d (%s)", set, i, g->values[g->outputs[i]].name);
            ok &= cu_compare(what, graft_plan_output(p, i),
                             cu_fmt("%s/output_%d.pb", set_dir, i), tol);
        }
        ok &= n_ref == n_out;
    }
    graft_plan_destroy(p);
out:
    for (int i = 0; i < n_in; i++)
        graft_tensor_destroy(in[i]);
    return ok;
}

void cu_cli_run_set(const char *model_in, const char *set_in, const cu_tol *tol)
{
    const char *cli = getenv("GRAFT_CLI");
    if (!cli || !*cli)
        return;
    char model[4096], set_dir[4096], ins[8192] = "", outd[4200];
    snprintf(model, sizeof model, "%s", model_in);
    snprintf(set_dir, sizeof set_dir, "%s", set_in);
    for (int i = 0;; i++) {
        const char *p = cu_fmt("%s/input_%d.pb", set_dir, i);
        if (!cu_exists(p))
            break;
        size_t l = strlen(ins);
        snprintf(ins + l, sizeof ins - l, " --in '%s'", p);
    }
    snprintf(outd, sizeof outd, "%s/cli-XXXXXX", cu_work());
    if (!mkdtemp(outd))
        return;
    const char *set = strrchr(set_dir, '/');
    set = set ? set + 1 : set_dir;
    const char *log = cu_keep(cu_fmt("%s/log.txt", outd));
    int rc = cu_run_capture(cu_fmt("'%s' run '%s'%s --out-dir '%s/out'", cli, model, ins, outd), log);
    if (rc != 0) {
        char *text = cu_slurp(log, NULL);
        CU_CHECK(0, "%s: `graft run` exit status %d: %s", set, rc, text ? text : "");
        free(text);
        return;
    }
    for (int i = 0;; i++) {
        const char *ref = cu_keep(cu_fmt("%s/output_%d.pb", set_dir, i));
        if (!cu_exists(ref))
            break;
        const char *got = cu_keep(cu_fmt("%s/out/output_%d.pb", outd, i));
        graft_tensor *t = lt_read_pb(got);
        CU_CHECK(t != NULL, "%s: `graft run` did not write a readable output_%d.pb", set, i);
        if (!t)
            continue;
        graft_dtype dg = GRAFT_DTYPE_UNDEFINED, dr = GRAFT_DTYPE_UNDEFINED;
        graft_tensor *tmp = NULL;
        graft_error err = {0};
        if (graft_onnx_read_tensor_file(got, &tmp, &dg, NULL, 0, &err) == GRAFT_OK)
            graft_tensor_destroy(tmp);
        tmp = NULL;
        if (graft_onnx_read_tensor_file(ref, &tmp, &dr, NULL, 0, &err) == GRAFT_OK)
            graft_tensor_destroy(tmp);
        CU_CHECK(dg == dr, "%s: `graft run` stored output_%d as %s, reference is %s", set, i,
                 graft_dtype_name(dg), graft_dtype_name(dr));
        cu_compare(cu_fmt("%s/output_%d via graft run", set, i), t, ref, tol);
        graft_tensor_destroy(t);
    }
}

int cu_run_all_sets(const graft_graph *g, const char *dir_in, const cu_tol *tol)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", dir_in);
    int k = 0;
    for (;; k++) {
        const char *s = cu_fmt("%s/test_data_set_%d", dir, k);
        if (!cu_exists(s))
            break;
        cu_run_set(g, s, tol);
    }
    CU_CHECK(k > 0, "no test_data_set_K in %s", dir);
    return k;
}

void cu_expect_reject(const char *path_in, const char *const *api_needles)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", path_in);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    graft_error err = {0};
    graft_graph *g = cu_import(path, &err);
    const char *stage = "import";
    int n_in = 0;
    graft_shape sh[16];
    graft_dtype dts[16];
    if (g) {
        stage = "plan";
        n_in = g->n_inputs < 16 ? g->n_inputs : 16;
        for (int i = 0; i < n_in; i++) {
            const graft_value *v = &g->values[g->inputs[i]];
            sh[i].rank = v->rank < 0 ? 0 : v->rank;
            for (int d = 0; d < sh[i].rank; d++)
                sh[i].dims[d] = v->dims[d] < 0 ? 1 : v->dims[d];
            dts[i] = v->dtype == GRAFT_DTYPE_UNDEFINED ? GRAFT_FLOAT : v->dtype;
        }
        graft_plan_options o = graft_plan_options_default();
        graft_plan *p = NULL;
        if (graft_plan_create(g, &o, n_in, sh, &p, &err) == GRAFT_OK) {
            CU_CHECK(0, "%s: accepted (import and plan succeed), must be refused", base);
            graft_plan_destroy(p);
            graft_graph_destroy(g);
            return;
        }
    }
    printf("  refused at %s: %s\n", stage, err.msg);
    cu_check_message(cu_fmt("%s (%s)", base, stage), err.msg, api_needles);
    if (!g)
        CU_CHECK(strstr(err.msg, base) != NULL, "%s: import message does not name the file: %s",
                 base, err.msg);

    /* the same through the CLI: exit 1, one line naming the file, no output */
    const char *cli = getenv("GRAFT_CLI");
    if (cli && *cli) {
        char dir[4096], ins[8192] = "";
        snprintf(dir, sizeof dir, "%s", cu_fmt("%s/reject-%s-XXXXXX", cu_work(), base));
        if (mkdtemp(dir)) {
            int k = g ? n_in : 1;
            for (int i = 0; i < k; i++) {
                const char *ip = cu_fmt("%s/input_%d.pb", dir, i);
                graft_tensor *t = NULL;
                graft_dtype dt = g ? dts[i] : GRAFT_FLOAT;
                graft_dtype cdt = graft_dtype_is_float(dt) ? GRAFT_FLOAT
                                  : dt == GRAFT_BOOL      ? GRAFT_UINT8
                                                          : GRAFT_INT64;
                int64_t one = 1;
                if (graft_tensor_create(cdt, g ? sh[i].rank : 1, g ? sh[i].dims : &one, &t, &err) ==
                    GRAFT_OK) {
                    graft_onnx_write_tensor_file(ip, t, dt, g ? g->values[g->inputs[i]].name : "X",
                                                 &err);
                    graft_tensor_destroy(t);
                }
                size_t l = strlen(ins);
                snprintf(ins + l, sizeof ins - l, " --in '%s'", ip);
            }
            const char *outd = cu_fmt("%s/out", dir);
            const char *log = cu_fmt("%s/stderr.txt", dir);
            int rc = cu_run_capture(cu_fmt("'%s' run '%s'%s --out-dir '%s'", cli, path, ins, outd),
                                    log);
            char *text = cu_slurp(log, NULL);
            CU_CHECK(rc == 1, "%s: `graft run` exit status %d (want 1; -1 = killed by a signal): %s",
                     base, rc, text ? text : "");
            if (text) {
                size_t l = strlen(text);
                while (l && text[l - 1] == '\n')
                    text[--l] = 0;
                CU_CHECK(!strchr(text, '\n'), "%s: `graft run` printed more than one line: %s",
                         base, text);
                CU_CHECK(strstr(text, base) != NULL, "%s: `graft run` message does not name the file: %s",
                         base, text);
            }
            free(text);
            CU_CHECK(!cu_exists(cu_fmt("%s/output_0.pb", outd)), "%s: `graft run` wrote an output file",
                     base);
        }
    }
    graft_graph_destroy(g);
}

graft_status cu_reheat(graft_graph *g, const char *cut_name, int n_classes, uint64_t seed,
                       graft_head_info *hi, graft_error *err)
{
    int32_t feat = -1;
    graft_status st;
    if (cut_name) {
        st = graft_surgery_resolve_cut(g, cut_name, &feat, err);
    } else {
        graft_feature_info fi;
        st = graft_surgery_find_features(g, &fi, err);
        feat = fi.value;
    }
    if (st != GRAFT_OK)
        return st;
    graft_head_spec hs = graft_head_spec_default();
    hs.n_classes = n_classes;
    hs.seed = seed;
    if ((st = graft_surgery_cut_and_attach(g, feat, &hs, hi, err)) != GRAFT_OK)
        return st;
    return graft_surgery_freeze(g, hi, err);
}

graft_tensor *cu_rand_tensor(int rank, const int64_t *dims, uint64_t seed)
{
    graft_tensor *t = NULL;
    if (graft_tensor_create(GRAFT_FLOAT, rank, dims, &t, NULL) != GRAFT_OK)
        return NULL;
    graft_rng r;
    graft_rng_seed(&r, seed);
    int64_t n = graft_tensor_nelem(t);
    for (int64_t i = 0; i < n; i++)
        graft_tensor_f32(t)[i] = (float)(graft_rng_uniform(&r) * 2 - 1);
    return t;
}

double cu_train(graft_graph *g, const graft_head_info *hi, const graft_tensor *x,
                const int64_t *labels, int64_t n, int batch, int steps, float lr, graft_error *err)
{
    if (batch > n)
        batch = (int)n;
    double loss = NAN;
    int64_t row = graft_tensor_nelem(x) / x->dims[0];
    graft_shape sh = {x->rank, {0}};
    memcpy(sh.dims, x->dims, sizeof sh.dims);
    sh.dims[0] = batch;
    int32_t fetch = hi->logits;
    graft_plan_options o = graft_plan_options_default();
    o.training = true;
    o.fetches = &fetch;
    o.n_fetches = 1;
    o.seed = 7;
    graft_plan *p = NULL;
    graft_tensor *xb = NULL, *d = NULL;
    bool *reported = calloc((size_t)g->n_values, 1);
    if (graft_plan_create(g, &o, 1, &sh, &p, err) != GRAFT_OK)
        goto out;
    size_t es = graft_dtype_size(x->dtype); /* float features or int64 ids */
    if (graft_tensor_create(x->dtype, sh.rank, sh.dims, &xb, err) != GRAFT_OK)
        goto out;
    for (int s = 0; s < steps; s++) {
        int64_t start = ((int64_t)s * batch) % n;
        int32_t lab[4096];
        for (int b = 0; b < batch; b++) {
            int64_t r = (start + b) % n;
            memcpy((char *)xb->data + (size_t)(b * row) * es, (const char *)x->data + (size_t)(r * row) * es,
                   es * (size_t)row);
            lab[b] = (int32_t)labels[r];
        }
        const graft_tensor *ins[1] = {xb};
        if (graft_plan_run(p, ins, err) != GRAFT_OK)
            goto out;
        const graft_tensor *lg = graft_plan_output(p, 0);
        int k = (int)lg->dims[lg->rank - 1];
        if (!d && graft_tensor_create(GRAFT_FLOAT, lg->rank, lg->dims, &d, err) != GRAFT_OK)
            goto out;
        /* softmax cross-entropy, averaged over the batch, written out here */
        loss = 0;
        for (int b = 0; b < batch; b++) {
            const float *z = graft_tensor_f32(lg) + b * k;
            float *dz = graft_tensor_f32(d) + b * k;
            double mx = z[0], sum = 0;
            for (int j = 1; j < k; j++)
                mx = fmax(mx, z[j]);
            for (int j = 0; j < k; j++)
                sum += exp(z[j] - mx);
            for (int j = 0; j < k; j++)
                dz[j] = (float)((exp(z[j] - mx) / sum - (j == lab[b])) / batch);
            loss += (log(sum) + mx - z[lab[b]]) / batch;
            if (getenv("CU_VERBOSE") && b == batch - 1)
                printf("    step %d loss %.6f\n", s, loss);
        }
        const graft_tensor *ds[1] = {d};
        if (graft_plan_backward(p, ds, err) != GRAFT_OK) {
            loss = NAN;
            goto out;
        }
        for (int32_t v = 0; v < g->n_values; v++) {
            graft_value *val = &g->values[v];
            if (val->kind != GRAFT_VALUE_INITIALIZER || !val->data)
                continue;
            const graft_tensor *gr = graft_plan_grad(p, v);
            if (!val->trainable) {
                if (gr && !reported[v]) {
                    CU_CHECK(0, "frozen initializer '%s' got a gradient", val->name);
                    reported[v] = true;
                }
                continue;
            }
            if (!gr) {
                if (!reported[v])
                    CU_CHECK(0, "trainable '%s' got no gradient", val->name);
                reported[v] = true;
                continue;
            }
            int64_t m = graft_tensor_nelem(val->data);
            CU_CHECK(graft_tensor_nelem(gr) == m, "gradient of '%s' has the wrong size", val->name);
            for (int64_t i = 0; i < m && i < graft_tensor_nelem(gr); i++)
                graft_tensor_f32(val->data)[i] -= lr * graft_tensor_f32(gr)[i];
        }
    }
out:
    free(reported);
    graft_tensor_destroy(xb);
    graft_tensor_destroy(d);
    graft_plan_destroy(p);
    return loss;
}

bool cu_ort_check(const char *exported_in, const graft_graph *g, const graft_tensor *x,
                  const cu_tol *tol)
{
    const char *ort = getenv("GRAFT_ORT_DIR");
    if (!ort || !*ort || !cu_exists(cu_fmt("%s/node_modules/onnxruntime-node", ort)) ||
        cu_sh("command -v node >/dev/null") != 0) {
        printf("  (ONNX Runtime not installed: cross-check skipped)\n");
        return false;
    }
    char exported[4096], dir[4200];
    snprintf(exported, sizeof exported, "%s", exported_in);
    snprintf(dir, sizeof dir, "%s/ort-XXXXXX", cu_work());
    if (!mkdtemp(dir))
        return false;
    graft_error err = {0};
    /* the input as the export declares it (a float32 export of a float16
     * model takes float32) */
    graft_graph *eg = cu_import(exported, &err);
    CU_CHECK(eg != NULL, "re-importing the export for ONNX Runtime: %s", err.msg);
    if (!eg)
        return false;
    const graft_value *in = &eg->values[eg->inputs[0]];
    graft_dtype in_dt = in->dtype ? in->dtype : GRAFT_FLOAT;
    const char *in_name = cu_keep(cu_fmt("%s", in->name));
    graft_graph_destroy(eg);
    const char *xin = cu_keep(cu_fmt("%s/input_0.pb", dir));
    if (graft_onnx_write_tensor_file(xin, x, in_dt, in_name, &err) != GRAFT_OK) {
        CU_CHECK(0, "writing the ORT input: %s", err.msg);
        return false;
    }
    graft_tensor *y = cu_forward(g, 1, (graft_tensor *const *)&x, -1, false, &err);
    CU_CHECK(y != NULL, "graft forward for the ORT comparison: %s", err.msg);
    if (!y)
        return false;
    const char *mine = cu_keep(cu_fmt("%s/graft_output_0.pb", dir));
    graft_onnx_write_tensor_file(mine, y, GRAFT_DTYPE_UNDEFINED, "y", &err);
    const char *src = getenv("GRAFT_SOURCE_DIR");
    const char *log = cu_keep(cu_fmt("%s/ort.txt", dir));
    int rc = cu_run_capture(cu_fmt("NODE_PATH='%s/node_modules' node '%s/tests/e2e/ort_run.js' '%s' "
                                   "'%s/out' '%s'",
                                   ort, src && *src ? src : ".", exported, dir, xin),
                            log);
    if (rc != 0) {
        char *text = cu_slurp(log, NULL);
        CU_CHECK(0, "ONNX Runtime refused the export (exit %d): %.600s", rc, text ? text : "");
        free(text);
    } else {
        graft_tensor *o = lt_read_pb(cu_fmt("%s/out/output_0.pb", dir));
        CU_CHECK(o != NULL, "ONNX Runtime output unreadable");
        if (o && cu_compare("ONNX Runtime on the export vs graft", o, mine, tol))
            printf("  ONNX Runtime runs the export and agrees with graft\n");
        graft_tensor_destroy(o);
    }
    graft_tensor_destroy(y);
    return rc == 0;
}

int cu_py(const char *fmt, ...)
{
    char args[12000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    const char *py = getenv("GRAFT_PYTHON");
    const char *src = getenv("GRAFT_SOURCE_DIR");
    return cu_sh("'%s' '%s/tests/cases/check_export.py' %s", py && *py ? py : "/usr/bin/python3",
                 src && *src ? src : ".", args);
}

int cu_finish(const char *name)
{
    if (cu_failures) {
        printf("%s: %d check(s) failed\n", name, cu_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

bool cu_max_diff(const graft_tensor *a, const graft_tensor *ref, double *d, double *mref)
{
    *d = 0;
    *mref = 0;
    if (a->rank != ref->rank || memcmp(a->dims, ref->dims, sizeof(int64_t) * (size_t)a->rank))
        return false;
    const float *x = graft_tensor_f32(a), *r = graft_tensor_f32(ref);
    for (int64_t i = 0; i < graft_tensor_nelem(ref); i++) {
        if (isnan(x[i]) || isnan(r[i]))
            return false;
        *d = fmax(*d, fabs((double)x[i] - r[i]));
        *mref = fmax(*mref, fabs(r[i]));
    }
    return true;
}

static void lap_at(void (*lap)(const char *), const char *what)
{
    if (lap)
        lap(what);
}

bool cu_finetune_export(graft_graph *g, const char *src_in, const char *cut, graft_tensor *x,
                        const int64_t *labels, int n_classes, int steps, int64_t want_width,
                        const cu_tol *tol, void (*lap)(const char *what))
{
    char src[4096];
    snprintf(src, sizeof src, "%s", src_in);
    graft_error err = {0};
    graft_head_info hi;
    if (cu_reheat(g, cut, n_classes, 1, &hi, &err) != GRAFT_OK) {
        CU_CHECK(0, "re-heading: %s", err.msg);
        return false;
    }
    printf("  head on %lld features\n", (long long)hi.n_features);
    CU_CHECK(want_width <= 0 || hi.n_features == want_width, "cut is %lld wide, documented %lld",
             (long long)hi.n_features, (long long)want_width);
    /* random weights give features of any scale: a step size of 1/max|f|^2
     * keeps plain SGD on the dense head stable whatever the scale */
    graft_tensor *feat = cu_forward(g, 1, &x, hi.head_input, false, &err);
    CU_CHECK(feat != NULL, "the head's input: %s", err.msg);
    double f2 = 0;
    for (int64_t b = 0; feat && b < feat->dims[0]; b++) {
        double s = 0;
        int64_t w = graft_tensor_nelem(feat) / feat->dims[0];
        for (int64_t i = 0; i < w; i++)
            s += (double)graft_tensor_f32(feat)[b * w + i] * graft_tensor_f32(feat)[b * w + i];
        f2 = fmax(f2, s);
    }
    graft_tensor_destroy(feat);
    float lr = (float)(1.0 / (1.0 + f2));
    int64_t n = x->dims[0];
    double loss0 = cu_train(g, &hi, x, labels, n, (int)n, 1, 0.0f, &err); /* lr 0: the start */
    double loss = isnan(loss0) ? NAN : cu_train(g, &hi, x, labels, n, (int)n, steps, lr, &err);
    CU_CHECK(!isnan(loss), "training: %s", err.msg);
    if (isnan(loss))
        return false;
    printf("  %d SGD steps, lr %.3g (1/(1+max|f|^2)): loss %.4f -> %.4f\n", steps, lr, loss0, loss);
    CU_CHECK(loss < loss0, "the loss did not go down (%.6f -> %.6f)", loss0, loss);
    lap_at(lap, "re-head + train");

    const char *out = cu_keep(cu_fmt("%s/ft.onnx", cu_work()));
    graft_onnx_export_options eo = graft_onnx_export_options_default();
    if (graft_onnx_export_file(g, out, &eo, &err) != GRAFT_OK) {
        CU_CHECK(0, "export after training: %s", err.msg);
        return false;
    }
    lap_at(lap, "export");
    CU_CHECK(cu_py("checker '%s'", out) == 0, "python check failed: checker '%s'", out);
    CU_CHECK(cu_py("backbone_same '%s' '%s' 4", out, src) == 0,
             "python check failed: backbone_same '%s' '%s' 4", out, src);
    CU_CHECK(cu_py("no_dead_inits '%s' '%s'", out, src) == 0,
             "python check failed: no_dead_inits '%s' '%s'", out, src);
    lap_at(lap, "python checks of the export");
    graft_graph *h = cu_import(out, &err);
    CU_CHECK(h != NULL, "re-import of the export: %s", err.msg);
    if (h) {
        graft_tensor *a = cu_forward(g, 1, &x, -1, false, &err);
        graft_tensor *b = cu_forward(h, 1, &x, -1, false, &err);
        double d = 0, m = 0;
        CU_CHECK(a && b, "running the fine-tuned model: %s", err.msg);
        if (a && b) {
            CU_CHECK(cu_max_diff(b, a, &d, &m) && d <= 1e-6,
                     "the export runs %.3g away from the in-memory model", d);
        }
        graft_tensor_destroy(a);
        graft_tensor_destroy(b);
        graft_graph_destroy(h);
    }
    lap_at(lap, "re-import + run");
    cu_ort_check(out, g, x, tol);
    lap_at(lap, "ONNX Runtime");
    return true;
}
