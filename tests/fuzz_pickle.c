/* libFuzzer target: the pickle reader on arbitrary bytes, from a stream of known size and from one
 * of unknown size (the archive path), with and without float32 conversion. Built with
 * -DDECOCL_FUZZ=ON under clang; run by ci/fuzz. */
#include <stddef.h>
#include <stdint.h>

#include "data/archive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int mode = 0; mode < 2; ++mode) {
        struct dc_mem_source m;
        struct dc_stream s;
        dc_stream_init_memory(&s, &m, data, size, "fuzz.pkl");
        if (mode) s.size = -1; /* as a streamed archive member */
        struct dc_pk_options opt = {.f32_min_ndim = mode ? 2 : 0};
        struct dc_pk_doc *doc = NULL;
        struct dc_error err = {0};
        if (dc_pickle_load(&s, &opt, &doc, &err) == DC_OK) dc_pk_doc_free(doc);
    }
    return 0;
}
