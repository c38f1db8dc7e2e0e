/* Commands implemented outside main.c. Each parses its own arguments (argv[0] is the
 * command name), prints its results, and returns the process exit status
 * (0 ok, 1 failure, 2 usage error) without exiting. */
#ifndef DC_COMMANDS_H
#define DC_COMMANDS_H

int dc_cmd_inspect(int argc, char **argv);
int dc_cmd_make_dataset(int argc, char **argv);

#include "decocl/backend.h"
/* Commands that run on a device get the global backend options. */
int dc_cmd_grad(int argc, char **argv, const struct dc_backend_options *be);
int dc_cmd_train(int argc, char **argv, const struct dc_backend_options *be);
int dc_cmd_eval(int argc, char **argv, const struct dc_backend_options *be);
int dc_cmd_predict(int argc, char **argv, const struct dc_backend_options *be);

#endif
