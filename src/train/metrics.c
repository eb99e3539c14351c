/* train/metrics.c - classification metrics from a confusion matrix
 * (row = true class, column = predicted), as scikit-learn's
 * classification_report computes them with zero_division=0:
 *   precision_c = C[c][c] / sum_r C[r][c]   (0 when nothing was predicted c)
 *   recall_c    = C[c][c] / sum_j C[c][j]   (0 when class c has no images)
 *   f1_c        = 2 p r / (p + r)           (0 when p + r = 0)
 * macro averages are plain means over the classes. Predictions of a class
 * the data does not have (other[c], a model with more outputs) count in
 * class c's row sum and as errors, in no precision. */
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graft/train.h"

void graft_metrics_fini(graft_metrics *m)
{
    if (!m)
        return;
    free(m->confusion);
    free(m->other);
    free(m->precision);
    free(m->recall);
    free(m->f1);
    memset(m, 0, sizeof *m);
}

graft_status graft_metrics_from_confusion(int n_classes, const int64_t *confusion,
                                          graft_metrics *m, graft_error *err)
{
    return graft_metrics_from_counts(n_classes, confusion, NULL, m, err);
}

graft_status graft_metrics_from_counts(int n_classes, const int64_t *confusion,
                                       const int64_t *other, graft_metrics *m, graft_error *err)
{
    memset(m, 0, sizeof *m);
    if (n_classes <= 0 || n_classes > GRAFT_MAX_CLASSES || !confusion)
        return graft_error_set(err, GRAFT_ERR_ARG, "metrics: bad class count %d", n_classes);
    size_t k = (size_t)n_classes;
    m->n_classes = n_classes;
    m->loss = NAN;
    m->confusion = malloc(k * k * sizeof *m->confusion);
    m->precision = calloc(k, sizeof *m->precision);
    m->recall = calloc(k, sizeof *m->recall);
    m->f1 = calloc(k, sizeof *m->f1);
    if (other)
        m->other = malloc(k * sizeof *m->other);
    if (!m->confusion || !m->precision || !m->recall || !m->f1 || (other && !m->other)) {
        graft_metrics_fini(m);
        return graft_error_set(err, GRAFT_ERR_NOMEM, "metrics: out of memory");
    }
    memcpy(m->confusion, confusion, k * k * sizeof *m->confusion);
    if (other)
        memcpy(m->other, other, k * sizeof *m->other);
    int64_t diag = 0, total = 0;
    for (size_t c = 0; c < k; c++) {
        int64_t tp = confusion[c * k + c], row = other ? other[c] : 0, col = 0;
        if (row < 0) {
            graft_metrics_fini(m);
            return graft_error_set(err, GRAFT_ERR_ARG, "metrics: negative count");
        }
        for (size_t j = 0; j < k; j++) {
            if (confusion[c * k + j] < 0 || confusion[j * k + c] < 0) {
                graft_metrics_fini(m);
                return graft_error_set(err, GRAFT_ERR_ARG, "metrics: negative count");
            }
            row += confusion[c * k + j];
            col += confusion[j * k + c];
        }
        diag += tp;
        total += row;
        double p = col ? (double)tp / (double)col : 0.0;
        double r = row ? (double)tp / (double)row : 0.0;
        m->precision[c] = p;
        m->recall[c] = r;
        m->f1[c] = p + r > 0 ? 2.0 * p * r / (p + r) : 0.0;
        m->macro_precision += p;
        m->macro_recall += r;
        m->macro_f1 += m->f1[c];
    }
    m->macro_precision /= (double)k;
    m->macro_recall /= (double)k;
    m->macro_f1 /= (double)k;
    m->n = total;
    m->accuracy = total ? (double)diag / (double)total : 0.0;
    return GRAFT_OK;
}

static const char *class_name(const char *const *names, int c, char *buf, size_t size)
{
    if (names && names[c])
        return names[c];
    snprintf(buf, size, "%d", c);
    return buf;
}

void graft_metrics_print(const graft_metrics *m, const char *const *class_names, FILE *f)
{
    if (!m || !f || m->n_classes <= 0)
        return;
    int k = m->n_classes;
    char buf[32];
    int w = 12; /* widest class name, at least "macro avg" + room */
    for (int c = 0; c < k; c++) {
        int len = (int)strlen(class_name(class_names, c, buf, sizeof buf));
        if (len > w)
            w = len;
    }
    fprintf(f, "%*s  %9s  %9s  %9s  %9s\n", w, "", "precision", "recall", "f1-score", "support");
    for (int c = 0; c < k; c++) {
        int64_t support = m->other ? m->other[c] : 0;
        for (int j = 0; j < k; j++)
            support += m->confusion[(size_t)c * (size_t)k + (size_t)j];
        fprintf(f, "%*s  %9.4f  %9.4f  %9.4f  %9lld\n", w, class_name(class_names, c, buf, sizeof buf),
                m->precision[c], m->recall[c], m->f1[c], (long long)support);
    }
    fprintf(f, "\n%*s  %9s  %9s  %9.4f  %9lld\n", w, "accuracy", "", "", m->accuracy,
            (long long)m->n);
    fprintf(f, "%*s  %9.4f  %9.4f  %9.4f  %9lld\n", w, "macro avg", m->macro_precision,
            m->macro_recall, m->macro_f1, (long long)m->n);
    if (isfinite(m->loss))
        fprintf(f, "%*s  %9.4f\n", w, "loss", m->loss);
    /* Confusion matrix: columns as wide as the largest count or label. */
    int cw = 4;
    for (int c = 0; c < k; c++) {
        int len = (int)strlen(class_name(class_names, c, buf, sizeof buf));
        if (len > cw)
            cw = len;
    }
    for (size_t i = 0; i < (size_t)k * (size_t)k; i++) {
        int len = snprintf(buf, sizeof buf, "%lld", (long long)m->confusion[i]);
        if (len > cw)
            cw = len;
    }
    if (m->other && cw < 5)
        cw = 5; /* "other" */
    for (int c = 0; m->other && c < k; c++) {
        int len = snprintf(buf, sizeof buf, "%lld", (long long)m->other[c]);
        if (len > cw)
            cw = len;
    }
    fprintf(f, "\nconfusion matrix (rows: true class, columns: predicted%s)\n%*s",
            m->other ? "; other: a class the data does not have" : "", w, "");
    for (int c = 0; c < k; c++)
        fprintf(f, "  %*s", cw, class_name(class_names, c, buf, sizeof buf));
    if (m->other)
        fprintf(f, "  %*s", cw, "other");
    fputc('\n', f);
    for (int r = 0; r < k; r++) {
        fprintf(f, "%*s", w, class_name(class_names, r, buf, sizeof buf));
        for (int c = 0; c < k; c++)
            fprintf(f, "  %*lld", cw, (long long)m->confusion[(size_t)r * (size_t)k + (size_t)c]);
        if (m->other)
            fprintf(f, "  %*lld", cw, (long long)m->other[r]);
        fputc('\n', f);
    }
}

/* JSON has no NaN: undefined numbers become null. */
static json_object *num(double v) { return isfinite(v) ? json_object_new_double(v) : NULL; }

char *graft_metrics_to_json(const graft_metrics *m, const char *const *class_names)
{
    if (!m || m->n_classes <= 0)
        return NULL;
    int k = m->n_classes;
    char buf[32];
    json_object *root = json_object_new_object();
    if (!root)
        return NULL;
    json_object_object_add(root, "n", json_object_new_int64(m->n));
    json_object_object_add(root, "accuracy", num(m->accuracy));
    json_object_object_add(root, "loss", num(m->loss));
    json_object_object_add(root, "macro_precision", num(m->macro_precision));
    json_object_object_add(root, "macro_recall", num(m->macro_recall));
    json_object_object_add(root, "macro_f1", num(m->macro_f1));
    json_object *classes = json_object_new_array();
    json_object *conf = json_object_new_array();
    for (int c = 0; c < k; c++) {
        json_object *o = json_object_new_object();
        int64_t support = m->other ? m->other[c] : 0;
        json_object *row = json_object_new_array();
        for (int j = 0; j < k; j++) {
            int64_t v = m->confusion[(size_t)c * (size_t)k + (size_t)j];
            support += v;
            json_object_array_add(row, json_object_new_int64(v));
        }
        json_object_array_add(conf, row);
        json_object_object_add(o, "name",
                               json_object_new_string(class_name(class_names, c, buf, sizeof buf)));
        json_object_object_add(o, "precision", num(m->precision[c]));
        json_object_object_add(o, "recall", num(m->recall[c]));
        json_object_object_add(o, "f1", num(m->f1[c]));
        json_object_object_add(o, "support", json_object_new_int64(support));
        if (m->other)
            json_object_object_add(o, "predicted_other", json_object_new_int64(m->other[c]));
        json_object_array_add(classes, o);
    }
    json_object_object_add(root, "classes", classes);
    json_object_object_add(root, "confusion", conf);
    if (m->other) {
        /* per true class: predictions of a class the data does not have */
        json_object *oth = json_object_new_array();
        for (int c = 0; c < k; c++)
            json_object_array_add(oth, json_object_new_int64(m->other[c]));
        json_object_object_add(root, "confusion_other", oth);
    }
    const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE);
    char *out = s ? strdup(s) : NULL;
    json_object_put(root);
    return out;
}
