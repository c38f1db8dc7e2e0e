/* libFuzzer target: the container path on arbitrary bytes: libarchive (tar, gzip, xz, zip, ...),
 * member selection, .npz members through the .npy reader, pickles through the pickle reader. */
#include <stddef.h>
#include <stdint.h>

#include "data/archive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct dc_pk_options opt = {.f32_min_ndim = 2};
    struct dc_pk_doc *doc = NULL;
    struct dc_error err = {0};
    if (dc_data_load_memory(data, size, "fuzz.bin", NULL, &opt, &doc, &err) == DC_OK) dc_pk_doc_free(doc);
    return 0;
}
