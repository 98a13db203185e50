# install.cmake — `cmake --install BUILD --prefix P` (included at the end of
# CMakeLists.txt). Installs:
#   P/include/steer.h, steer_train.h, steer_exp.h
#   P/lib/libsteer.so.0.1.0 (+ .so.0 soname and .so links) and libsteer.a,
#     the same for libsteer-train and libsteer-exp
#   P/bin/steer                                  the CLI (steer_cli)
#   P/lib/pkgconfig/steer.pc, steer-train.pc, steer-exp.pc
#   P/lib/cmake/steer/steerConfig.cmake (+ version and targets files):
#     find_package(steer) gives steer::steer, steer::steer-train,
#     steer::steer-exp (shared) and steer::steer-static, steer::steer-train-static,
#     steer::steer-exp-static.
# The libraries are built from OBJECT libraries through $<TARGET_OBJECTS>, so
# the *_obj targets are not in their link interfaces and need no export; only
# the six library targets are exported (install(EXPORT)). Their interfaces name
# the imported targets OpenMP::OpenMP_C and PkgConfig::{CJSON,PCRE2,CAIRO},
# which steerConfig.cmake recreates before it includes the targets.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(STEER_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/steer)

# Exported names: steer::steer, steer::steer-train, … (the targets keep their
# build names). Installed shared libraries find each other beside themselves
# ($ORIGIN) and keep the OpenBLAS directory chosen at configure time (the
# openblas-openmp variant is not on the default search path's first place).
foreach(tier core train exp)
  if(tier STREQUAL core)
    set(pub steer)
  else()
    set(pub steer-${tier})
  endif()
  set_target_properties(steer_${tier} PROPERTIES EXPORT_NAME ${pub}
    INSTALL_RPATH "\$ORIGIN" INSTALL_RPATH_USE_LINK_PATH ON)
  set_target_properties(steer_${tier}_static PROPERTIES EXPORT_NAME ${pub}-static)
endforeach()
set_target_properties(steer_cli PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON)

install(FILES ${CMAKE_SOURCE_DIR}/include/steer.h ${CMAKE_SOURCE_DIR}/include/steer_train.h
  ${CMAKE_SOURCE_DIR}/include/steer_exp.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

install(TARGETS steer_core steer_train steer_exp steer_core_static steer_train_static steer_exp_static
  EXPORT steerTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS steer_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# ---------------------------------------------------------------- CMake package
install(EXPORT steerTargets NAMESPACE steer:: FILE steerTargets.cmake
  DESTINATION ${STEER_INSTALL_CMAKEDIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/steerConfig.cmake.in
  ${CMAKE_BINARY_DIR}/steerConfig.cmake INSTALL_DESTINATION ${STEER_INSTALL_CMAKEDIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/steerConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/steerConfig.cmake ${CMAKE_BINARY_DIR}/steerConfigVersion.cmake
  DESTINATION ${STEER_INSTALL_CMAKEDIR})

# ---------------------------------------------------------------- pkg-config
# Libs.private / Requires.private carry what a static link needs
# (pkg-config --static --libs steer): OpenMP, OpenBLAS (the directory
# found as BLAS_LIBRARIES, also as an rpath so the openmp variant is the one
# loaded), libcjson, libpcre2-8, libm; train and exp add cairo.
set(STEER_PC_BLAS "")
foreach(lib ${BLAS_LIBRARIES})
  if(IS_ABSOLUTE "${lib}")
    get_filename_component(dir "${lib}" DIRECTORY)
    get_filename_component(name "${lib}" NAME_WE)
    string(REGEX REPLACE "^lib" "" name "${name}")
    if(NOT dir IN_LIST CMAKE_C_IMPLICIT_LINK_DIRECTORIES)
      string(APPEND STEER_PC_BLAS " -L${dir} -Wl,-rpath,${dir}")
    endif()
    string(APPEND STEER_PC_BLAS " -l${name}")
  else()
    string(APPEND STEER_PC_BLAS " ${lib}")
  endif()
endforeach()
string(STRIP "${STEER_PC_BLAS}" STEER_PC_BLAS)
set(STEER_PC_OPENMP "${OpenMP_C_FLAGS}")
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(STEER_PC_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(STEER_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()

# The prefix is known only at install time (cmake --install --prefix P), so
# the .pc files are configured twice: now with everything but the prefix
# (BUILD/pkgconfig/*.pc.in), then by the install script, with the prefix,
# straight into the destination (not through the build tree, so two installs
# of one build tree to two prefixes at once do not mix their files).
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(STEER_PC_DEST "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
else()
  set(STEER_PC_DEST "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig")
endif()
set(STEER_PC_PREFIX "@STEER_PC_PREFIX@") # kept for the second pass
foreach(pc steer steer-train steer-exp)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/${pc}.pc.in ${CMAKE_BINARY_DIR}/pkgconfig/${pc}.pc.in @ONLY)
  install(CODE "
    set(STEER_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
    set(_steer_pc \"\$ENV{DESTDIR}${STEER_PC_DEST}/${pc}.pc\")
    message(STATUS \"Installing: \${_steer_pc}\")
    configure_file(\"${CMAKE_BINARY_DIR}/pkgconfig/${pc}.pc.in\" \"\${_steer_pc}\" @ONLY)
    list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${_steer_pc}\")")
endforeach()
