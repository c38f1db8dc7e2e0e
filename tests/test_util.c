#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

uint64_t test_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double test_unit_double(uint64_t *state) { return (double)(test_splitmix64(state) >> 11) * 0x1.0p-53; }

struct dc_backend_options test_cl_options(void) {
    struct dc_backend_options o = {0};
    const char *dev = getenv("DECOCL_TEST_DEVICE");
    o.device = dev && *dev ? dev : "cpu";
    const char *gemm = getenv("DECOCL_GEMM");
    if (gemm && strcmp(gemm, "clblast") == 0) o.gemm = DC_GEMM_CLBLAST;
    else o.gemm = DC_GEMM_OWN; /* tests force a provider; auto-measurement is tested separately */
    const char *bin = getenv("DECOCL_KERNELS_BINARY");
    if (bin && *bin) o.kernels_binary = bin;
    return o;
}

int test_probe_opencl(void) {
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) {
        struct dc_backend_options o = test_cl_options();
        o.kernels_binary = NULL; /* only asks whether the device exists */
        struct dc_device_info *list;
        size_t n;
        struct dc_error err = {0};
        if (dc_device_list(&list, &n, &err) != DC_OK) _exit(1);
        int found = 0;
        for (size_t i = 0; i < n; ++i)
            if (strcmp(list[i].type, o.device) == 0 || strcmp(list[i].id, o.device) == 0) found = 1;
        free(list);
        _exit(found ? 0 : 1);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0) return 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int test_run_suite(Suite *s, int needs_cl) {
    if (needs_cl && !test_probe_opencl()) {
        const char *ci = getenv("CI");
        if (ci && strcmp(ci, "true") == 0) {
            fprintf(stderr, "FAIL: no OpenCL device for DECOCL_TEST_DEVICE; under CI=true this is a failure, not a skip\n");
            return 1;
        }
        fprintf(stderr, "SKIP: no OpenCL device found (set CI=true to make this a failure)\n");
        return 77;
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    int run = srunner_ntests_run(sr);
    srunner_free(sr);
    if (run == 0) {
        fprintf(stderr, "FAIL: no test ran (a CK_RUN_SUITE/CK_RUN_CASE filter matching nothing is not a pass)\n");
        return 1;
    }
    return failed == 0 ? 0 : 1;
}
