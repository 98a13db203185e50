# ---------------------------------------------------------------- MPI (docs/SCALING.md)
# `steer sweep --mpi` shares a sweep's items over the ranks of an MPI job
# (tools/mpi/). MPI is optional: the libraries never use it, and only the CLI
# links it. STEER_MPI = AUTO (default: with MPI when CMake finds it, e.g. the
# Debian packages libopenmpi-dev + openmpi-bin that scripts/setup.sh
# installs), ON (required) or OFF (a build with no MPI dependency; --mpi then
# says it is not in this build).
set(STEER_MPI AUTO CACHE STRING "MPI for --mpi in the CLI: AUTO, ON or OFF")
set_property(CACHE STEER_MPI PROPERTY STRINGS AUTO ON OFF)
set(STEER_HAVE_MPI OFF)
if(STEER_MPI STREQUAL "ON")
  find_package(MPI REQUIRED COMPONENTS C)
  set(STEER_HAVE_MPI ON)
elseif(NOT STEER_MPI STREQUAL "OFF")
  find_package(MPI QUIET COMPONENTS C)
  if(MPI_C_FOUND)
    set(STEER_HAVE_MPI ON)
  endif()
endif()
if(STEER_HAVE_MPI)
  find_package(Threads REQUIRED)
  file(GLOB STEER_MPI_SOURCES ${CMAKE_SOURCE_DIR}/tools/mpi/*.c)
  target_sources(steer_cli PRIVATE ${STEER_MPI_SOURCES})
  target_compile_definitions(steer_cli PRIVATE STEER_HAVE_MPI)
  target_link_libraries(steer_cli PRIVATE MPI::MPI_C Threads::Threads)
  message(STATUS "MPI: ${MPI_C_LIBRARIES} (steer sweep --mpi)")
else()
  message(STATUS "MPI: not used (STEER_MPI=${STEER_MPI}); --mpi is not in this build")
endif()
