# SPDX-License-Identifier: Apache-2.0
# ctest driver for the consumer projects. Inputs: MODE, BUILD_DIR, SOURCE_DIR (tests/consumer),
# PROJECT_DIR (blockformer's source), WORK_DIR, DATA_DIR. Modes:
#   install           CPU-only consumer of the install, built and run with CUDAToolkit made
#                     unfindable: a CUDA-enabled install must not need a CUDA toolkit downstream
#   subdirectory      the same consumer through add_subdirectory
#   cuda_component    find_package(blockformer COMPONENTS cuda) gives blockformer::cuda
#                     (skipped where blockformer was installed without CUDA)
#   cuda_unavailable  with CUDAToolkit unfindable, OPTIONAL_COMPONENTS cuda still finds the CPU
#                     package and COMPONENTS cuda fails with a message that says why
file(REMOVE_RECURSE ${WORK_DIR})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()
set(no_cuda_toolkit -DCMAKE_DISABLE_FIND_PACKAGE_CUDAToolkit=ON)

if(MODE STREQUAL "subdirectory")
  set(how -DBLOCKFORMER_SOURCE_DIR=${PROJECT_DIR} -DBLOCKFORMER_CUDA=OFF)
else()
  run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
  set(how -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
endif()

if(MODE STREQUAL "install" OR MODE STREQUAL "subdirectory")
  if(MODE STREQUAL "install")
    list(APPEND how ${no_cuda_toolkit})
  endif()
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build ${how} -DCMAKE_BUILD_TYPE=Release)
  run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
  run(${WORK_DIR}/build/consumer ${DATA_DIR})
elseif(MODE STREQUAL "cuda_component")
  file(GLOB_RECURSE cuda_export ${WORK_DIR}/prefix/*/blockformerCudaTargets.cmake)
  if(NOT cuda_export)
    message("BLOCKFORMER_CONSUMER_SKIPPED: blockformer was installed without its CUDA backend")
    return()
  endif()
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/components -B ${WORK_DIR}/build ${how} -DEXPECT=found
      -DCMAKE_BUILD_TYPE=Release)
  run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
  run(${WORK_DIR}/build/consumer_cuda)
elseif(MODE STREQUAL "cuda_unavailable")
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/components -B ${WORK_DIR}/optional ${how} ${no_cuda_toolkit}
      -DEXPECT=optional)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/components -B ${WORK_DIR}/required ${how}
                          ${no_cuda_toolkit} -DEXPECT=required
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc EQUAL 0)
    message(FATAL_ERROR "COMPONENTS cuda succeeded although CUDAToolkit could not be found")
  endif()
  if(NOT out MATCHES "component cuda needs CUDAToolkit|installed without its CUDA backend")
    message(FATAL_ERROR "COMPONENTS cuda failed without saying why:\n${out}")
  endif()
else()
  message(FATAL_ERROR "unknown MODE ${MODE}")
endif()
