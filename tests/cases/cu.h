/* tests/cases/cu.h - the conformance drivers' toolkit (cases and models
 * suites): soft checks that collect every failure of a case, running a model
 * on ONNX test-data folders and comparing with the stored references (read
 * by an independent protobuf reader), expecting clean refusals through the
 * API and the CLI, a head-training loop on in-memory tensors built on the
 * public executor, and calls of the python checker. */
#ifndef GRAFT_CASES_CU_H
#define GRAFT_CASES_CU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graft/graft.h"

extern int cu_failures;

void cu_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cu_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define CU_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond))                                                                               \
            cu_fail_at(__FILE__, __LINE__, __VA_ARGS__);                                           \
    } while (0)

/* $GRAFT_SHARED_DIR or NULL; the scratch folder of this run (removed at exit). */
const char *cu_shared(void);
const char *cu_work(void);
/* A copy of s freed at exit (paths that live for the whole run). */
const char *cu_keep(const char *s);
/* printf into a static rotating buffer (8 slots). */
const char *cu_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* <shared>/cases/<ID>_* or NULL. */
const char *cu_case_dir(const char *id);
bool cu_exists(const char *path);
int cu_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Runs a command with stdout+stderr to a file; returns exit status, -1 if killed. */
int cu_run_capture(const char *cmd, const char *out_file);
char *cu_slurp(const char *path, size_t *len); /* NUL-terminated, malloc'd */

/* Message checks: non-empty, one line, each needle present (as a token
 * when tokens is true: not inside a longer identifier). */
bool cu_has_token(const char *msg, const char *tok);
void cu_check_message(const char *what, const char *msg, const char *const *needles);

/* Imports path; NULL with err on failure. */
graft_graph *cu_import(const char *path, graft_error *err);

typedef struct cu_tol {
    double rel_f32;   /* |d| <= rel * max|ref| */
    double abs_f16;   /* fp16 reference: |d| <= abs_f16 * max(1, ...) see below */
    bool f16_relative;/* fp16 tolerance relative to max|ref| instead of absolute */
    double abs_f32;   /* > 0: float32 tolerance is this absolute bound instead */
} cu_tol;
cu_tol cu_tol_cases(void);  /* 1e-4 relative; fp16 2e-2 absolute */
cu_tol cu_tol_models(void); /* 1e-4 relative; fp16 1e-3 relative */

/* Compares got (compute form) against the reference file; what names it. */
bool cu_compare(const char *what, const graft_tensor *got, const char *ref_path, const cu_tol *tol);
/* Runs g on <set_dir>/input_N.pb and compares every <set_dir>/output_N.pb.
 * Returns true when everything matched (failures already recorded). */
bool cu_run_set(const graft_graph *g, const char *set_dir, const cu_tol *tol);
/* Every test_data_set_K under dir; returns the number of sets run. */
int cu_run_all_sets(const graft_graph *g, const char *dir, const cu_tol *tol);

/* The same through `graft run MODEL --in ... --out-dir`: every output_N.pb
 * it writes matches the reference and is stored in the reference's element
 * type. No-op without $GRAFT_CLI. */
void cu_cli_run_set(const char *model, const char *set_dir, const cu_tol *tol);

/* Reads input tensors of a set (count in *n); caller destroys. */
int cu_read_inputs(const char *set_dir, graft_tensor **t, int max);

/* Runs g once on inputs (fetch: value index or -1 for graph outputs);
 * returns a clone of output 0 of the fetches (or of output `which`). NULL on
 * error (err set). */
graft_tensor *cu_forward(const graft_graph *g, int n_in, graft_tensor *const *in, int32_t fetch,
                         bool training, graft_error *err);

/* Expects path to be refused: import fails, or planning with the declared
 * input shapes (symbolic dims = 1) fails. The message must be one line and
 * contain the needles. Also runs `graft run` on it: exit status 1 (not a
 * crash), one stderr line naming the file, no output file. */
void cu_expect_reject(const char *path, const char *const *api_needles);

/* The head: cut at cut_name (NULL: automatic), attach n_classes, freeze. */
graft_status cu_reheat(graft_graph *g, const char *cut_name, int n_classes, uint64_t seed,
                       graft_head_info *hi, graft_error *err);
/* SGD on x/labels through the public executor: training plan feeding the
 * graph input and fetching head->logits; softmax cross-entropy gradient
 * computed here; every trainable initializer updated from graft_plan_grad.
 * Records a failure if a non-trainable initializer gets a gradient. Returns
 * the loss of the last step, or NAN on error (err set). */
double cu_train(graft_graph *g, const graft_head_info *hi, const graft_tensor *x,
                const int64_t *labels, int64_t n, int batch, int steps, float lr,
                graft_error *err);
/* Random tensor of dims (uniform -1..1) and labels in [0,k). */
graft_tensor *cu_rand_tensor(int rank, const int64_t *dims, uint64_t seed);

/* ONNX Runtime (node + onnxruntime-node under $GRAFT_ORT_DIR) runs the
 * exported file on x; its output 0 must match graft's forward of g (the
 * in-memory model) within the tolerance. Returns false (nothing checked)
 * when ONNX Runtime is not installed. */
bool cu_ort_check(const char *exported, const graft_graph *g, const graft_tensor *x,
                  const cu_tol *tol);

/* Runs tests/cases/check_export.py <args>; returns its exit status. */
int cu_py(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Exit code for the case: 0, 1 (failures) */
int cu_finish(const char *name);

/* max|a-b| and max|ref| over two float tensors of one shape; false on a shape
 * mismatch or a NaN. */
bool cu_max_diff(const graft_tensor *a, const graft_tensor *ref, double *d, double *mref);

/* The families' fine-tuning steps, shared with the tfstyle suite: a new
 * n_classes head at cut (NULL: the automatic cut; want_width > 0: it must
 * read that many features), `steps` SGD steps on the whole of x (labels per
 * row) with step size 1/(1 + max|features|^2), stable at any feature scale,
 * and the loss must go down; then export, onnx.checker full_check, backbone
 * initializers bit-identical to src_model, no dead initializers (the
 * export is <cu_work()>/ft.onnx); the
 * re-imported export runs like the in-memory model (1e-6) and ONNX Runtime
 * like graft (tol). lap (may be NULL) is called after each stage. Failures
 * are recorded; returns false when a stage could not run at all. */
bool cu_finetune_export(graft_graph *g, const char *src_model, const char *cut, graft_tensor *x,
                        const int64_t *labels, int n_classes, int steps, int64_t want_width,
                        const cu_tol *tol, void (*lap)(const char *what));

#endif
