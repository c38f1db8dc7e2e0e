#include "core/hash.h"

#include <openssl/evp.h>

int dc_sha256_init(struct dc_sha256 *h) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        h->ctx = NULL;
        return -1;
    }
    h->ctx = ctx;
    return 0;
}

void dc_sha256_update(struct dc_sha256 *h, const void *data, size_t n) {
    if (h->ctx && n) EVP_DigestUpdate(h->ctx, data, n);
}

void dc_sha256_final(struct dc_sha256 *h, uint8_t out[32]) {
    unsigned len = 32;
    if (!h->ctx || EVP_DigestFinal_ex(h->ctx, out, &len) != 1)
        for (int i = 0; i < 32; ++i) out[i] = 0;
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

void dc_sha256(const void *data, size_t n, uint8_t out[32]) {
    struct dc_sha256 h;
    dc_sha256_init(&h);
    dc_sha256_update(&h, data, n);
    dc_sha256_final(&h, out);
}

void dc_hex(const uint8_t *bytes, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; ++i) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}
