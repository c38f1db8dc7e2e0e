/* The two checks every public op wrapper makes (backend.c, backend_hete.c): a view large
 * enough for the sizes given (a programmer error otherwise: abort), and the op present on
 * this backend (DC_ERR_UNSUPPORTED with a message otherwise). Both expect `be` in scope. */
#ifndef DC_BACKEND_WRAP_H
#define DC_BACKEND_WRAP_H

#include "backend/backend_impl.h"
#include "core/assert.h"

#define NEED(v, count) DC_ASSERT((v).mem != NULL && (v).n >= (count))
#define DISPATCH(op, ...)                                                                                 \
    do {                                                                                                  \
        if (!be->op_ok[DC_OP_##op])                                                                       \
            return dc_set_error(be->err, DC_ERR_UNSUPPORTED, "op %s is not available on %s (%s)", #op,  \
                                be->device_name, be->impl->name);                                         \
        be->stats.ops++;                                                                                  \
        return be->impl->op(be, __VA_ARGS__);                                                            \
    } while (0)

#endif
