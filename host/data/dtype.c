/* dtype names and sizes, float32 conversion, Fortran-to-C reordering. */
#include <stdlib.h>
#include <string.h>

#include "data/pickle.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the data readers assume a little-endian host (pickled numpy payloads are little-endian)"
#endif

const char *dc_dtype_name(enum dc_dtype t) {
    switch (t) {
        case DC_DTYPE_BOOL: return "bool";
        case DC_DTYPE_I8: return "int8";
        case DC_DTYPE_U8: return "uint8";
        case DC_DTYPE_I16: return "int16";
        case DC_DTYPE_I32: return "int32";
        case DC_DTYPE_I64: return "int64";
        case DC_DTYPE_F16: return "float16";
        case DC_DTYPE_F32: return "float32";
        case DC_DTYPE_F64: return "float64";
        case DC_DTYPE_UNICODE: return "<U";
        case DC_DTYPE_OBJECT: return "object";
    }
    return "?";
}

bool dc_dtype_is_float(enum dc_dtype t) { return t == DC_DTYPE_F16 || t == DC_DTYPE_F32 || t == DC_DTYPE_F64; }

bool dc_dtype_is_int(enum dc_dtype t) { return t <= DC_DTYPE_I64; }

size_t dc_dtype_size(enum dc_dtype t) {
    switch (t) {
        case DC_DTYPE_BOOL:
        case DC_DTYPE_I8:
        case DC_DTYPE_U8: return 1;
        case DC_DTYPE_I16:
        case DC_DTYPE_F16: return 2;
        case DC_DTYPE_I32:
        case DC_DTYPE_F32: return 4;
        case DC_DTYPE_I64:
        case DC_DTYPE_F64: return 8;
        case DC_DTYPE_UNICODE:
        case DC_DTYPE_OBJECT: return 0;
    }
    return 0;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) bits = sign | 0x7f800000u | (man << 13); /* inf, NaN */
    else if (exp != 0) bits = sign | ((exp + 112) << 23) | (man << 13);
    else if (man == 0) bits = sign;
    else { /* subnormal half: normalise */
        int e = -1;
        do {
            ++e;
            man <<= 1;
        } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void dc_convert_to_f32(float *dst, const void *src, enum dc_dtype from, size_t n) {
    const unsigned char *p = src;
    for (size_t i = 0; i < n; ++i) {
        float v = 0.0f;
        switch (from) {
            case DC_DTYPE_BOOL: v = p[i] ? 1.0f : 0.0f; break;
            case DC_DTYPE_I8: v = (float)(int8_t)p[i]; break;
            case DC_DTYPE_U8: v = (float)p[i]; break;
            case DC_DTYPE_I16: { int16_t x; memcpy(&x, p + 2 * i, 2); v = (float)x; break; }
            case DC_DTYPE_I32: { int32_t x; memcpy(&x, p + 4 * i, 4); v = (float)x; break; }
            case DC_DTYPE_I64: { int64_t x; memcpy(&x, p + 8 * i, 8); v = (float)x; break; }
            case DC_DTYPE_F16: { uint16_t x; memcpy(&x, p + 2 * i, 2); v = half_to_float(x); break; }
            case DC_DTYPE_F32: memcpy(&v, p + 4 * i, 4); break;
            case DC_DTYPE_F64: { double x; memcpy(&x, p + 8 * i, 8); v = (float)x; break; }
            case DC_DTYPE_UNICODE:
            case DC_DTYPE_OBJECT: break;
        }
        dst[i] = v;
    }
}

bool dc_shape_count(const size_t *shape, int ndim, size_t itemsize, size_t *count, size_t *nbytes) {
    size_t c = 1;
    for (int k = 0; k < ndim; ++k)
        if (__builtin_mul_overflow(c, shape[k], &c)) return false;
    size_t b;
    if (__builtin_mul_overflow(c, itemsize, &b)) return false;
    *count = c;
    *nbytes = b;
    return true;
}

void *dc_fortran_to_c(const void *src, const size_t *shape, int ndim, size_t itemsize) {
    size_t count, nbytes;
    if (!dc_shape_count(shape, ndim, itemsize, &count, &nbytes)) return NULL;
    unsigned char *dst = malloc(nbytes ? nbytes : 1);
    if (!dst || count == 0) return dst;
    size_t fstride[DC_PK_MAX_DIMS], idx[DC_PK_MAX_DIMS] = {0};
    size_t s = 1;
    for (int k = 0; k < ndim; ++k) {
        fstride[k] = s;
        s *= shape[k];
    }
    size_t foff = 0; /* Fortran element offset of the C-order element i */
    const unsigned char *in = src;
    for (size_t i = 0; i < count; ++i) {
        memcpy(dst + i * itemsize, in + foff * itemsize, itemsize);
        for (int k = ndim - 1; k >= 0; --k) { /* odometer over the C index */
            if (++idx[k] < shape[k]) {
                foff += fstride[k];
                break;
            }
            foff -= fstride[k] * (shape[k] - 1);
            idx[k] = 0;
        }
    }
    return dst;
}
