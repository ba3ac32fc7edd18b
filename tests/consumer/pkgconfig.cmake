# SPDX-License-Identifier: Apache-2.0
# ctest driver: a build without CMake, through the installed blockformer.pc. Inputs: BUILD_DIR,
# SOURCE_DIR (tests/consumer), WORK_DIR, PKG_CONFIG, CXX, VERSION (project(VERSION)). Checks that
# pkg-config's version is the project's, and that its Cflags and Libs compile, link and run
# pkgconfig.cpp (which checks the version macros against VERSION).
file(REMOVE_RECURSE ${WORK_DIR})
function(run out_var)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()

execute_process(COMMAND ${PKG_CONFIG} --exists eigen3 nlohmann_json RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message("BLOCKFORMER_CONSUMER_SKIPPED: no eigen3.pc / nlohmann_json.pc, which blockformer.pc requires")
  return()
endif()

run(ignored ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
file(GLOB_RECURSE pc ${WORK_DIR}/prefix/*/pkgconfig/blockformer.pc)
if(NOT pc)
  message(FATAL_ERROR "blockformer.pc was not installed under ${WORK_DIR}/prefix")
endif()
get_filename_component(pc_dir ${pc} DIRECTORY)
set(ENV{PKG_CONFIG_PATH} "${pc_dir}:$ENV{PKG_CONFIG_PATH}")

run(pc_version ${PKG_CONFIG} --modversion blockformer)
if(NOT pc_version STREQUAL VERSION)
  message(FATAL_ERROR "pkg-config --modversion blockformer is '${pc_version}', the project's version is ${VERSION}")
endif()
run(cflags ${PKG_CONFIG} --cflags blockformer)
run(libs ${PKG_CONFIG} --libs blockformer)
message("Cflags: ${cflags}\nLibs: ${libs}")
if(NOT cflags MATCHES "-I${WORK_DIR}/prefix/")
  message(FATAL_ERROR "Cflags do not point into the install prefix: ${cflags}")
endif()
separate_arguments(cflags UNIX_COMMAND "${cflags}")
separate_arguments(libs UNIX_COMMAND "${libs}")
string(REPLACE "." ";" parts ${VERSION})
list(GET parts 0 major)
list(GET parts 1 minor)
list(GET parts 2 patch)
run(ignored ${CXX} ${cflags} -DEXPECTED_MAJOR=${major} -DEXPECTED_MINOR=${minor} -DEXPECTED_PATCH=${patch}
    "-DEXPECTED_STRING=\"${VERSION}\"" ${SOURCE_DIR}/pkgconfig.cpp ${libs} -o ${WORK_DIR}/pkgconfig)
run(printed ${WORK_DIR}/pkgconfig)
message("${printed}")
