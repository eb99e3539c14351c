/* tools/graft/cli_data.c - loading the labelled images named on the command
 * line (an IDX pair or a folder), with class names and a class subset. */
#include <string.h>

#include "cli.h"
#include "cli_data.h"

graft_status cli_data_load(const cli_data_src *src, const graft_preprocess *pp,
                           const cli_model_info *mi, const int *classes, int n_classes,
                           int64_t per_class, uint64_t seed, graft_dataset **out,
                           graft_error *err)
{
    graft_dataset *all = NULL;
    graft_status st;
    if (src->dir)
        st = graft_data_load_folder(src->dir, pp->height, pp->width, pp->channels, &all, err);
    else
        st = graft_data_load_idx(src->images, src->labels, &all, err);
    if (st != GRAFT_OK)
        return st;
    /* IDX labels are bare numbers: name them from the backbone's manifest
     * (Fashion-MNIST's class names for the default backbone). */
    if (!src->dir && mi && mi->n_names >= all->n_classes) {
        st = graft_data_set_class_names(all, all->n_classes, (const char *const *)mi->names, err);
        if (st != GRAFT_OK)
            goto fail;
    }
    /* every class, every image: the set as read (an IDX file of a few
     * classes has label numbers with no images, which a selection refuses) */
    if (n_classes <= 0 && per_class <= 0) {
        *out = all;
        return GRAFT_OK;
    }
    int every[GRAFT_MAX_CLASSES];
    if (n_classes <= 0) {
        n_classes = all->n_classes;
        for (int i = 0; i < n_classes; i++)
            every[i] = i;
        classes = every;
    }
    st = graft_data_select(all, classes, n_classes, per_class, seed, out, err);
    if (st != GRAFT_OK) {
        graft_error_prefix(err, "%s", src->dir ? src->dir : src->labels);
        goto fail;
    }
    graft_dataset_destroy(all);
    return GRAFT_OK;
fail:
    graft_dataset_destroy(all);
    return st;
}

int cli_data_classes_by_name(const graft_dataset *all, int n_labels, char *const *labels,
                             int *classes)
{
    for (int k = 0; k < n_labels; k++) {
        classes[k] = -1;
        for (int c = 0; c < all->n_classes; c++)
            if (strcmp(all->class_names[c], labels[k]) == 0)
                classes[k] = c;
        if (classes[k] < 0)
            return k;
    }
    return -1;
}
