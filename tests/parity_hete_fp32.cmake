# Parity of the heterogeneity-loss kernels on their float fallback (devices without
# cl_khr_fp64), forced on this device: the kernel sources are copied with
# DC_HETE_FP32 defined and loaded through DECOCL_CL_DIR.
# cmake -DSRC=<repo>/cl -DOUT=<dir> -DTEST=<test_ops_parity> -P parity_hete_fp32.cmake
cmake_minimum_required(VERSION 3.20)
file(REMOVE_RECURSE ${OUT})
file(MAKE_DIRECTORY ${OUT})
file(GLOB sources ${SRC}/*.cl)
foreach(f IN LISTS sources)
  get_filename_component(name ${f} NAME)
  file(READ ${f} text)
  if(name STREQUAL "common.cl")
    set(text "#define DC_HETE_FP32 1\n${text}")
  endif()
  file(WRITE ${OUT}/${name} "${text}")
endforeach()
set(ENV{DECOCL_CL_DIR} ${OUT})
set(ENV{DECOCL_TEST_OPS} "gmm_fwd,gmm_bwd,sinkhorn_fwd,sinkhorn_bwd,local_proto_fwd,local_proto_bwd")
execute_process(COMMAND ${TEST} RESULT_VARIABLE rc)
if(rc EQUAL 77)
  message(STATUS "skipped: no OpenCL device")
elseif(NOT rc EQUAL 0)
  message(FATAL_ERROR "test_ops_parity on the float fallback: exit ${rc}")
endif()
