/* PLACEHOLDER: `decocl make-dataset` lands with the synthetic datasets. */
#include <stdio.h>

#include "cli/commands.h"

int dc_cmd_make_dataset(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "decocl: 'make-dataset' is not available in this version yet\n");
    return 1;
}
