/* decocl: DecAlign training on any OpenCL device, with a plain-C reference path. */
#ifndef DECOCL_H
#define DECOCL_H

#define DECOCL_VERSION "0.1.0"

#include "decocl/status.h"
#include "decocl/backend.h"
#include "decocl/ops.h"

#endif
