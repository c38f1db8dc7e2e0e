/* .npy files (format versions 1, 2, 3): the header dict, the same dtypes and checks as the
 * pickle reader, and placement of <split>/<key>.npy into the {split: {key: array}} tree. */
#ifndef DC_NPY_H
#define DC_NPY_H

#include "data/pickle.h"

/* Reads one .npy from in into a new ARRAY value of doc. */
dc_status dc_npy_read(struct dc_stream *in, const struct dc_pk_options *opt, struct dc_pk_doc *doc,
                      struct dc_pk_value **out, struct dc_error *err);

/* Puts arr at root[split][key] for a path ".../<split>/<key>.npy"; creates root as needed. */
dc_status dc_npy_place(struct dc_pk_doc *doc, const char *path, struct dc_pk_value *arr, const char *where,
                       struct dc_error *err);

/* Reads DIR/<split>/<key>.npy for the splits train, valid and test. */
dc_status dc_npy_load_dir(const char *dir, const struct dc_pk_options *opt, struct dc_pk_doc **out,
                          struct dc_error *err);

#endif
