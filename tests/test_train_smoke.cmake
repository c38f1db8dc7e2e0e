# Training smoke tests through the command line (issue 5):
#  1. every config in configs/ trains one epoch on ref and on the OpenCL CPU device, on a
#     tiny synthetic dataset of its kind, and writes results.json;
#  2. a run that SIGKILLs itself mid-epoch (DECOCL_TRAIN_KILL_AFTER_BATCHES, no clean-up)
#     and is continued with --resume ends with the same results.json as an uninterrupted run.
# cmake -DDECOCL=path -DSRC=source-dir -DWORK=dir [-DDEVICES=ref;cpu] -P test_train_smoke.cmake
cmake_minimum_required(VERSION 3.20)
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
if(NOT DEFINED DEVICES)
  set(DEVICES ref cpu)
endif()

function(run_ok name)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${name}: exit ${rc}\n${out}${err}")
  endif()
  message(STATUS "ok: ${name}")
endfunction()

function(read_results dir var)
  if(NOT EXISTS ${dir}/results.json)
    message(FATAL_ERROR "${dir}/results.json missing")
  endif()
  file(READ ${dir}/results.json text)
  string(JSON n LENGTH "${text}" runs)
  if(NOT n EQUAL 1)
    message(FATAL_ERROR "${dir}/results.json: ${n} runs, expected 1")
  endif()
  set(${var} "${text}" PARENT_SCOPE)
endfunction()

# 1. every config, one epoch, each device
foreach(kind mosi mosei sims iemocap)
  run_ok("make-dataset ${kind}" ${DECOCL} make-dataset --like ${kind} --samples 8,4,4 --seed 2
         --out ${WORK}/${kind}.pkl)
  foreach(dev IN LISTS DEVICES)
    run_ok("train configs/${kind}.cfg on ${dev}, 1 epoch"
           ${DECOCL} --device ${dev} train ${SRC}/configs/${kind}.cfg --data ${WORK}/${kind}.pkl
           --set num_epochs=1 --out ${WORK}/${kind}-${dev})
    read_results(${WORK}/${kind}-${dev} res)
    string(JSON best GET "${res}" runs 0 best_epoch)
    if(NOT best EQUAL 1)
      message(FATAL_ERROR "${kind} on ${dev}: best_epoch ${best}, expected 1")
    endif()
    if(NOT EXISTS ${WORK}/${kind}-${dev}/seed-1111/best.safetensors)
      message(FATAL_ERROR "${kind} on ${dev}: no best.safetensors")
    endif()
  endforeach()
endforeach()

# 2. SIGKILL mid-epoch, then --resume: the same results as without the kill
list(GET DEVICES -1 dev)
set(small --set num_epochs=3 --set nlevels=1 --set dst_feature_dim_nheads=16,2 --set pde_dim=16
          --set batch_size=4)
run_ok("make-dataset for the kill test" ${DECOCL} make-dataset --like mosi --samples 16,6,6 --seed 4
       --out ${WORK}/kill.pkl)
run_ok("uninterrupted run" ${DECOCL} --device ${dev} train ${SRC}/configs/mosi.cfg --data ${WORK}/kill.pkl ${small}
       --out ${WORK}/whole)
# 4 batches per epoch: batch 7 is in the middle of epoch 2
execute_process(COMMAND ${CMAKE_COMMAND} -E env DECOCL_TRAIN_KILL_AFTER_BATCHES=7
                ${DECOCL} --device ${dev} train ${SRC}/configs/mosi.cfg --data ${WORK}/kill.pkl ${small}
                --out ${WORK}/killed
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0 OR EXISTS ${WORK}/killed/results.json)
  message(FATAL_ERROR "the killed run was not killed (exit ${rc})\n${out}${err}")
endif()
message(STATUS "ok: killed mid-epoch 2 (${rc})")
file(STRINGS ${WORK}/killed/metrics.csv rows)
list(LENGTH rows nrows)
if(NOT nrows EQUAL 2)
  message(FATAL_ERROR "killed run: metrics.csv has ${nrows} lines, expected header + epoch 1")
endif()
run_ok("resume the killed run" ${DECOCL} --device ${dev} train --resume ${WORK}/killed)
read_results(${WORK}/whole a)
read_results(${WORK}/killed b)
string(JSON ta GET "${a}" runs 0 test)
string(JSON tb GET "${b}" runs 0 test)
string(JSON ea GET "${a}" runs 0 best_epoch)
string(JSON eb GET "${b}" runs 0 best_epoch)
if(NOT ta STREQUAL tb OR NOT ea EQUAL eb)
  message(FATAL_ERROR "resumed run differs:\nuninterrupted: best epoch ${ea} ${ta}\nresumed:       best epoch ${eb} ${tb}")
endif()
file(STRINGS ${WORK}/whole/metrics.csv ra)
file(STRINGS ${WORK}/killed/metrics.csv rb)
list(LENGTH ra na)
list(LENGTH rb nb)
if(NOT na EQUAL nb)
  message(FATAL_ERROR "metrics.csv: ${na} lines uninterrupted, ${nb} resumed")
endif()
message(STATUS "ok: resumed after SIGKILL = uninterrupted (best epoch ${ea}, test ${ta})")
