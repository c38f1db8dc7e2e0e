/* PLACEHOLDER: `decocl inspect` lands with the data layer. */
#include <stdio.h>

#include "cli/commands.h"

int dc_cmd_inspect(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "decocl: 'inspect' is not available in this version yet\n");
    return 1;
}
