/* tools/graft/cli_data.h - the data set named on a command line. */
#ifndef GRAFT_CLI_DATA_H
#define GRAFT_CLI_DATA_H

#include "cli.h"

typedef struct cli_data_src {
    const char *dir;    /* --data DIR: one subfolder per class */
    const char *images; /* --idx-images */
    const char *labels; /* --idx-labels */
} cli_data_src;

/* Loads src (folders are resized to pp's size at load), names IDX classes
 * from mi's class_names, and keeps classes[0..n_classes) (all when
 * n_classes is 0), per_class each (0: all) chosen with seed. */
graft_status cli_data_load(const cli_data_src *src, const graft_preprocess *pp,
                           const cli_model_info *mi, const int *classes, int n_classes,
                           int64_t per_class, uint64_t seed, graft_dataset **out,
                           graft_error *err);

/* Finds each label among all's class names; returns -1 when all are found
 * (classes filled), else the index of the first missing label. */
int cli_data_classes_by_name(const graft_dataset *all, int n_labels, char *const *labels,
                             int *classes);

#endif
