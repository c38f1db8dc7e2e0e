#include "core/assert.h"

#include <stdio.h>
#include <stdlib.h>

_Noreturn void dc_abort(const char *file, int line, const char *what) {
    fprintf(stderr, "decocl: internal error at %s:%d: assertion failed: %s\n", file, line, what);
    abort();
}
