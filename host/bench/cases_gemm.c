/* PLACEHOLDER: GEMM cases land with the GEMM providers. */
#include "bench/op_cases.h"

void dc_cases_gemm(struct dc_case_list *l, bool bench) { (void)l, (void)bench; }
