/* SHA-256 through OpenSSL's libcrypto. */
#ifndef DC_HASH_H
#define DC_HASH_H

#include <stddef.h>
#include <stdint.h>

struct dc_sha256 {
    void *ctx; /* EVP_MD_CTX */
};
int dc_sha256_init(struct dc_sha256 *h);
void dc_sha256_update(struct dc_sha256 *h, const void *data, size_t n);
/* Writes 32 bytes and frees the context. */
void dc_sha256_final(struct dc_sha256 *h, uint8_t out[32]);
void dc_sha256(const void *data, size_t n, uint8_t out[32]);
void dc_hex(const uint8_t *bytes, size_t n, char *out); /* out: 2n+1 chars */

#endif
