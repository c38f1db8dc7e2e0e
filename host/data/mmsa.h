/* Helpers over the MMSA value tree {split: {key: value}}, shared by the dataset layer and
 * `decocl inspect`. */
#ifndef DC_MMSA_H
#define DC_MMSA_H

#include "data/pickle.h"

/* root[split] when it is a dict, else NULL. */
struct dc_pk_value *dc_mmsa_split(const struct dc_pk_doc *doc, enum dc_split_id s);
/* Length of the first axis of an array (0-d: 1) or the length of a list/tuple; false otherwise. */
bool dc_mmsa_len(const struct dc_pk_value *v, size_t *n);
/* Element i of a string-like value (<U array, object array or list/tuple of str) as UTF-8. */
bool dc_mmsa_string_at(const struct dc_pk_value *v, size_t i, char *out, size_t cap);
/* Element i of a numeric array, or of a list/tuple of int/float/bool/numpy scalars, as double. */
bool dc_mmsa_number_at(const struct dc_pk_value *v, size_t i, double *out);
/* Dataset kind from the train split's keys and feature sizes. */
enum dc_dataset_kind dc_mmsa_doc_kind(const struct dc_pk_doc *doc);

#endif
