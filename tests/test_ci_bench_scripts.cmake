# The benchmark scripts' refusal paths (they cannot run for real in CI):
#   cmake -DSRC=source dir -DWORK=dir -P test_ci_bench_scripts.cmake
# ci/gpu-bench without an NVIDIA OpenCL driver must name what is missing and exit 3 before
# building anything; ci/bench-vs-pytorch without the authors' code must say so and exit 1.
cmake_minimum_required(VERSION 3.20)
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

execute_process(COMMAND sh -c "{ ldconfig -p 2>/dev/null || /sbin/ldconfig -p; } | grep -q libnvidia-opencl"
                RESULT_VARIABLE has_nvidia)
if(has_nvidia EQUAL 0)
  message(STATUS "skip: this machine has libnvidia-opencl, so ci/gpu-bench would really run")
else()
  execute_process(COMMAND env GPU_BENCH_WORK=${WORK}/work ${SRC}/ci/gpu-bench --debs ${WORK}/no-debs --out ${WORK}/out
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 3)
    message(SEND_ERROR "ci/gpu-bench without an NVIDIA driver: exit ${rc}, expected 3\n${out}${err}")
  endif()
  foreach(needle "missing, nothing was run" "libnvidia-opencl.so.1, the NVIDIA OpenCL driver")
    string(FIND "${err}" "${needle}" pos)
    if(pos EQUAL -1)
      message(SEND_ERROR "ci/gpu-bench: stderr lacks '${needle}'\n${err}")
    endif()
  endforeach()
  if(EXISTS ${WORK}/work/build/decocl)
    message(SEND_ERROR "ci/gpu-bench built decocl although the driver is missing")
  endif()
  file(READ ${WORK}/out/steps.log log)
  string(FIND "${log}" "libnvidia-opencl.so.1" pos)
  if(pos EQUAL -1)
    message(SEND_ERROR "ci/gpu-bench: steps.log lacks the missing driver\n${log}")
  endif()
endif()

execute_process(COMMAND ${SRC}/ci/bench-vs-pytorch ${WORK}/no-such-repo mosi
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 1)
  message(SEND_ERROR "ci/bench-vs-pytorch without the authors' code: exit ${rc}, expected 1\n${out}${err}")
endif()
string(FIND "${err}" "the authors' repository at '${WORK}/no-such-repo'" pos)
if(pos EQUAL -1)
  message(SEND_ERROR "ci/bench-vs-pytorch: stderr does not name the missing repository\n${err}")
endif()
execute_process(COMMAND ${SRC}/ci/bench-vs-pytorch RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 2)
  message(SEND_ERROR "ci/bench-vs-pytorch without arguments: exit ${rc}, expected 2\n${err}")
endif()
