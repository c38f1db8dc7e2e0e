/* PLACEHOLDER: `decocl grad` lands with the model. */
#include <stdio.h>

#include "cli/commands.h"

int dc_cmd_grad(int argc, char **argv, const struct dc_backend_options *be) {
    (void)argc, (void)argv, (void)be;
    fprintf(stderr, "decocl: 'grad' is not available in this version yet\n");
    return 1;
}
