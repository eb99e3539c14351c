/* tools/graft/cli.h - what the subcommands of the `graft` program share:
 * exit codes, the option scanner, number/list parsing, and the settings a
 * model carries with it (manifest next to the file, or graft metadata).
 *
 * Exit codes: 0 success, 1 a library error (bad model, missing file, ...),
 * 2 a bad command line. Every failure prints exactly one line
 * "graft: <problem>" on stderr.
 */
#ifndef GRAFT_CLI_H
#define GRAFT_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "graft/graft.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

int cli_cmd_inspect(int argc, char **argv);
int cli_cmd_run(int argc, char **argv);
int cli_cmd_train(int argc, char **argv);
int cli_cmd_eval(int argc, char **argv);

/* Prints "graft: <message>" on stderr and returns code. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A library failure: "graft: <err.msg>" and CLI_FAIL. */
int cli_fail_err(const graft_error *err);

/* Walks argv[1..]: options "--name value", "--name=value" or "--flag", and
 * positional words. */
typedef struct cli_args {
    int argc;
    char **argv;
    int i;
    const char *cmd;   /* subcommand, for messages */
    const char *name;  /* current option name without the value ("--lr") */
    const char *value; /* "=value" part when given inline, else NULL */
    const char *positional;
} cli_args;

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv);
/* 1: an option in a->name, 0: a positional word in a->positional, -1: end. */
int cli_args_next(cli_args *a);
/* The option's value (inline or the next word); NULL after printing the
 * usage error (missing value). */
const char *cli_args_value(cli_args *a);
/* The option takes no value: false (after printing) if "=value" was given. */
bool cli_args_flag(cli_args *a);
/* Prints "graft: <cmd>: unknown option '<name>'" and returns CLI_USAGE. */
int cli_args_unknown(cli_args *a);

/* Strict number parsing for flag values; false after printing a one-line
 * usage error naming the flag. */
bool cli_parse_int(const char *flag, const char *s, long min, long max, long *out);
bool cli_parse_u64(const char *flag, const char *s, uint64_t *out);
bool cli_parse_float(const char *flag, const char *s, double min, double max, float *out);
/* "a,b,c" with 1..max entries (a single value is repeated to 3 for
 * triples when fill3 is set). Returns the count or -1 after printing. */
int cli_parse_floats(const char *flag, const char *s, float *out, int max, bool fill3);
int cli_parse_ints(const char *flag, const char *s, int *out, int max, int min_value,
                   int max_value);
/* "HxW" or "N". */
bool cli_parse_size(const char *flag, const char *s, int *h, int *w);
/* "flip,rotate=0.1,zoom=0.1,crop=0.1" (flip takes an optional probability). */
bool cli_parse_augment(const char *flag, const char *s, graft_augment *aug);

/* Preprocessing flags shared by train and eval: --size --channels --scale
 * --mean --std --bgr --rgb --nhwc --nchw. Returns 1 if a->name was one of
 * them and has been applied (0 not ours, -1 usage error printed). */
typedef struct cli_pp_flags {
    graft_preprocess pp;
    bool set_size, set_channels, set_scale, set_mean, set_std, set_order, set_layout;
} cli_pp_flags;
int cli_pp_flag(cli_args *a, cli_pp_flags *f);
/* Applies the flags given over base. */
void cli_pp_apply(const cli_pp_flags *f, graft_preprocess *base);

/* Settings stored with a model: the manifest "<model minus .onnx>.json"
 * (models/fmnist_cnn.json) or the graft.* metadata of an exported model. */
typedef struct cli_model_info {
    bool has_pp;
    graft_preprocess pp;
    char *cut;          /* manifest "cut" unless "auto"; malloc'd or NULL */
    char *manifest;     /* the manifest's path when one was read; malloc'd or NULL */
    int n_names;        /* class names of the data set (manifest class_names) */
    char **names;
    int n_labels;       /* graft.labels of an exported model */
    char **labels;
    int n_classes_src;  /* graft.classes: data-set class numbers of the labels */
    int classes_src[GRAFT_MAX_CLASSES];
} cli_model_info;

void cli_model_info_fini(cli_model_info *mi);
/* Reads the manifest next to model_path when there is one; false with err
 * set when it exists but cannot be parsed. */
bool cli_manifest_load(const char *model_path, cli_model_info *mi, graft_error *err);
/* Reads graft.preprocess / graft.labels / graft.classes from g's metadata. */
bool cli_meta_load(const graft_graph *g, cli_model_info *mi, graft_error *err);
/* Preprocessing JSON (the manifest and graft.preprocess format). */
bool cli_pp_from_json(const char *json, graft_preprocess *pp, graft_error *err);
char *cli_pp_to_json(const graft_preprocess *pp); /* malloc'd */
/* Defaults from the model's first input shape: NCHW or NHWC with C in {1,3},
 * H and W when fixed; scale 1/255, mean 0, std 1. */
graft_preprocess cli_pp_guess(const graft_graph *g);

/* The default backbone (models/fmnist_cnn.onnx) looked up from the current
 * folder, then next to the executable (build dirs sit in the source tree). */
const char *cli_default_model(char *buf, size_t size);

/* Writes text to path through path.tmp + rename. */
bool cli_write_file(const char *path, const char *text, graft_error *err);
/* Writes text to "<path>.tmp.<pid>" only, named in tmp (size bytes) for the
 * caller to rename or remove; tmp is "" when nothing was left. */
bool cli_write_tmp(const char *path, const char *text, char *tmp, size_t size, graft_error *err);

/* One "note: ..." line on out per node stored in training form
 * (BatchNormalization training_mode=1, Dropout with a training_mode input):
 * graft runs and exports such nodes in inference form. Returns the count. */
int cli_note_training_form(const graft_graph *g, FILE *out);

/* An output file named by flag: not empty, not a folder, in a folder that
 * exists and is writable. CLI_OK, else CLI_USAGE after printing. */
int cli_check_output(const char *flag, const char *path);
/* Both paths name the same file: the same inode when both exist, else the
 * same real path (of the folder plus the name for one not there yet). */
bool cli_same_file(const char *a, const char *b);
/* False with err set when path is an empty file (before importing it). */
bool cli_model_nonempty(const char *path, graft_error *err);
/* A "note:" line on out when some class of ds has fewer than per_class
 * images (--per-class asked for more): how many each of those has. */
void cli_note_per_class(const graft_dataset *ds, int64_t per_class, const char *flag, FILE *out);

/* Monotonic seconds. */
double cli_now(void);

#define CLI_FMNIST_DIR "/usr/share/datasets/fashion-mnist"

#endif
