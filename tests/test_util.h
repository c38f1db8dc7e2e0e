/* Shared test helpers: backends created inside the forked Check child, the
 * OpenCL platform probe, and options taken from the environment. */
#ifndef DC_TEST_UTIL_H
#define DC_TEST_UTIL_H

#include <check.h>
#include <stdint.h>

#include "decocl/decocl.h"

/* splitmix64: the tests' deterministic generator. test_unit_double is in [0, 1) with 53 bits. */
uint64_t test_splitmix64(uint64_t *state);
double test_unit_double(uint64_t *state);

/* Options for the OpenCL backend under test, from the environment:
 * DECOCL_TEST_DEVICE (default "cpu"), DECOCL_GEMM (own|clblast), DECOCL_KERNELS_BINARY. */
struct dc_backend_options test_cl_options(void);

/* Probes for an OpenCL device in a forked child (OpenCL state must never exist in
 * the parent before Check forks). Returns 1 when one is present. */
int test_probe_opencl(void);

/* Runs the suite; exits 77 (skip) when needs_cl and no device, unless CI=true, where
 * that is a failure. Returns the process exit code. */
int test_run_suite(Suite *s, int needs_cl);

#endif
