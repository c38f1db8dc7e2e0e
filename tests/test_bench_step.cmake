# `decocl bench step` and `decocl bench compare` smoke test:
#   cmake -DDECOCL=path -DSRC=source dir -DWORK=dir -P test_bench_step.cmake
# Tiny runs (batch 2, 2 steps after 1 warm-up, a 64^3 SGEMM probe) on ref and PoCL's CPU
# device; the JSON is parsed with CMake's string(JSON) and every field issue 6 names is
# checked, as is the analytic FLOP count against the GEMM FLOPs the backend counted.
cmake_minimum_required(VERSION 3.20)
file(MAKE_DIRECTORY ${WORK})
set(CFG ${SRC}/configs)

function(run_ok name)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${name}: exit ${rc}\n${out}\n${err}")
  endif()
  set(last_out "${out}" PARENT_SCOPE)
  message(STATUS "ok: ${name}")
endfunction()

function(check cond_msg)
  if(NOT (${ARGN}))
    message(SEND_ERROR "${cond_msg}")
  endif()
endfunction()

# A number field of a result must be a JSON number, and > 0 unless zero_ok.
function(positive json label)
  string(JSON type TYPE "${json}" ${ARGN})
  if(NOT type STREQUAL "NUMBER")
    message(SEND_ERROR "${label}: ${ARGN} is ${type}, not a number")
    return()
  endif()
  string(JSON v GET "${json}" ${ARGN})
  if(NOT v GREATER 0)
    message(SEND_ERROR "${label}: ${ARGN} = ${v}, expected > 0")
  endif()
endfunction()

set(common --steps 2 --warmup 1 --batch-size 2 --sgemm-size 64)
run_ok("bench step mosi on ref and cpu (--json, --csv)"
       ${DECOCL} bench step ${CFG}/mosi.cfg --devices ref,cpu ${common} --json --csv ${WORK}/mosi.csv)
set(js "${last_out}")
file(WRITE ${WORK}/mosi.json "${js}")
string(JSON cfg GET "${js}" config)
check("config field: ${cfg}" cfg MATCHES "mosi.cfg$")
string(JSON batch GET "${js}" batch_size)
check("batch_size ${batch}, expected 2" batch EQUAL 2)
string(JSON n LENGTH "${js}" results)
check("${n} results, expected 2 (ref, cpu)" n EQUAL 2)
set(backends "")
math(EXPR last "${n} - 1")
foreach(i RANGE ${last})
  string(JSON r GET "${js}" results ${i})
  string(JSON dev ERROR_VARIABLE no_dev GET "${r}" device)
  string(JSON error ERROR_VARIABLE no_error GET "${r}" error)
  if(no_error STREQUAL "NOTFOUND")
    message(SEND_ERROR "result ${i} failed: ${error}")
    continue()
  endif()
  string(JSON backend GET "${r}" backend)
  list(APPEND backends ${backend})
  string(JSON driver GET "${r}" driver)
  check("${dev}: empty driver" driver MATCHES ".")
  foreach(k median p10 p90)
    positive("${r}" "${dev}" step_ms ${k})
    positive("${r}" "${dev}" forward_ms ${k})
  endforeach()
  string(JSON p10 GET "${r}" step_ms p10)
  string(JSON med GET "${r}" step_ms median)
  string(JSON p90 GET "${r}" step_ms p90)
  check("${dev}: step p10 ${p10} <= median ${med} <= p90 ${p90}" NOT p10 GREATER med AND NOT med GREATER p90)
  string(JSON nph LENGTH "${r}" phases_ms)
  check("${dev}: ${nph} phases, expected 7" nph EQUAL 7)
  foreach(ph encoders hete homo transformers head backward optimiser)
    positive("${r}" "${dev}" phases_ms ${ph})
  endforeach()
  foreach(k launches_per_step host_device_bytes_per_step peak_host_mb peak_device_mb gflop_per_step gflops
            sgemm_gflops epoch_s)
    positive("${r}" "${dev}" ${k})
  endforeach()
  # the analytic count (bench/README.md) must equal what the GEMM wrappers counted. An op
  # that does matrix products outside dc_gemm_ex (e.g. a fused attention kernel) must add
  # its 2mnk to dc_backend_stats.gemm_flops too, or this check has to change.
  string(JSON fa GET "${r}" gflop_per_step)
  string(JSON fc GET "${r}" gflop_counted_per_step)
  check("${dev}: analytic ${fa} GFLOP != counted ${fc}" fa STREQUAL fc)
  string(JSON es GET "${r}" epoch_samples)
  string(JSON eb GET "${r}" epoch_batches)
  check("${dev}: epoch ${es} samples in ${eb} batches, expected MOSI's 1284 in 642" es EQUAL 1284 AND eb EQUAL 642)
endforeach()
string(JOIN "," backends_str ${backends})
check("backends ${backends_str}, expected ref,opencl" backends_str STREQUAL "ref,opencl")

file(STRINGS ${WORK}/mosi.csv csv)
list(LENGTH csv nl)
check("mosi.csv: ${nl} lines, expected a header and 2 rows" nl EQUAL 3)
list(GET csv 0 header)
check("mosi.csv header: ${header}" header MATCHES "^config,device_id,device,driver,.*step_ms_median.*epoch_s,error$")

# Other shapes: SIMS (conv kernel 5, unaligned lengths) and a skipped projection (D_v == d)
# through the FLOP check on ref.
run_ok("bench step sims on ref" ${DECOCL} bench step ${CFG}/sims.cfg --devices ref --steps 1 --warmup 0 --batch-size 1
       --sgemm-size 64 --no-breakdown --json)
string(JSON fa GET "${last_out}" results 0 gflop_per_step)
string(JSON fc GET "${last_out}" results 0 gflop_counted_per_step)
check("sims: analytic ${fa} GFLOP != counted ${fc}" fa STREQUAL fc)
string(JSON nph LENGTH "${last_out}" results 0 phases_ms)
check("--no-breakdown: ${nph} phases" nph EQUAL 0)
run_ok("bench step with a skipped projection" ${DECOCL} bench step ${CFG}/mosi.cfg --devices ref --steps 1 --warmup 0
       --batch-size 2 --sgemm-size 64 --no-breakdown --set dst_feature_dim_nheads=20,4 --json)
string(JSON fa GET "${last_out}" results 0 gflop_per_step)
string(JSON fc GET "${last_out}" results 0 gflop_counted_per_step)
check("skipped projection: analytic ${fa} GFLOP != counted ${fc}" fa STREQUAL fc)

# --json FILE.json (the issue's form): the JSON goes to the file, nothing to stdout.
run_ok("bench step --json FILE" ${DECOCL} bench step ${CFG}/mosi.cfg --devices ref --steps 1 --warmup 0 --batch-size 2
       --sgemm-size 64 --no-breakdown --json ${WORK}/out.json)
string(LENGTH "${last_out}" nout)
check("--json FILE printed to stdout: ${last_out}" nout EQUAL 0)
file(READ ${WORK}/out.json jf)
string(JSON nres LENGTH "${jf}" results)
check("--json FILE: ${nres} results" nres EQUAL 1)

# The table form names both devices and the estimated epoch.
run_ok("bench step table" ${DECOCL} bench step ${CFG}/mosi.cfg --devices ref ${common} --no-breakdown)
check("table lacks the ref row:\n${last_out}" last_out MATCHES "ref \\(plain C\\)")
check("table lacks the epoch note:\n${last_out}" last_out MATCHES "epoch: estimated")

# compare: one Markdown row per result, ref's speed-up 1.00x
run_ok("bench compare" ${DECOCL} bench compare ${WORK}/mosi.json ${WORK}/mosi.json)
string(REGEX MATCHALL "\n\\| mosi.cfg \\| 2 \\|" rows "${last_out}")
list(LENGTH rows nrows)
check("compare: ${nrows} rows, expected 4:\n${last_out}" nrows EQUAL 4)
check("compare: no 1.00x for ref:\n${last_out}" last_out MATCHES "ref \\(plain C\\) \\| [^|]+ \\| [^|]+ \\| 1.00x \\|")

# failures
execute_process(COMMAND ${DECOCL} bench step ${CFG}/mosi.cfg --devices nosuch ${common} --json
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
check("unknown device: exit ${rc}, expected 2\n${out}${err}" rc EQUAL 2)
check("unknown device: no error entry in the JSON\n${out}" out MATCHES "\"error\"")
execute_process(COMMAND ${DECOCL} bench compare ${WORK}/mosi.csv RESULT_VARIABLE rc ERROR_VARIABLE err)
check("compare of a CSV: exit ${rc}, expected 1\n${err}" rc EQUAL 1)
file(WRITE ${WORK}/other.json "{\"a\": 1}")
execute_process(COMMAND ${DECOCL} bench compare ${WORK}/other.json RESULT_VARIABLE rc ERROR_VARIABLE err)
check("compare of other JSON: exit ${rc}\n${err}" rc EQUAL 1 AND err MATCHES "not a `decocl bench step --json` result")
execute_process(COMMAND ${DECOCL} bench step ${CFG}/mosi.cfg --steps 0 RESULT_VARIABLE rc ERROR_VARIABLE err)
check("--steps 0: exit ${rc}, expected 2" rc EQUAL 2)
