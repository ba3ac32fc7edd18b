# SPDX-License-Identifier: Apache-2.0
# blockformer.pc for builds outside CMake, installed to ${libdir}/pkgconfig. Paths are relative to
# the .pc file (${pcfiledir}) so that `cmake --install --prefix` anywhere gives a working file.
file(RELATIVE_PATH BLOCKFORMER_PC_PREFIX_FROM_PCDIR
     "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig" "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" BLOCKFORMER_PC_PREFIX_FROM_PCDIR "${BLOCKFORMER_PC_PREFIX_FROM_PCDIR}")
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(BLOCKFORMER_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(BLOCKFORMER_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/blockformer.pc.in ${CMAKE_CURRENT_BINARY_DIR}/blockformer.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/blockformer.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
