# SPDX-License-Identifier: Apache-2.0
# ctest driver for the consumer project. Inputs: MODE (install or subdirectory), BUILD_DIR,
# SOURCE_DIR (the consumer), PROJECT_DIR (blockformer's source), WORK_DIR, DATA_DIR.
file(REMOVE_RECURSE ${WORK_DIR})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()
if(MODE STREQUAL "install")
  run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
  set(how -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
else()
  set(how -DBLOCKFORMER_SOURCE_DIR=${PROJECT_DIR} -DBLOCKFORMER_CUDA=OFF)
endif()
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build ${how} -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/consumer ${DATA_DIR})
