# `steer serve` (docs/SERVER.md): the HTTP server in tools/serve/ on
# libmicrohttpd (Debian libmicrohttpd-dev, scripts/setup.sh), linked into the
# CLI; tools/cmd_serve.c is picked up by the CLI's glob of tools/*.c.
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
find_package(Threads REQUIRED)
file(GLOB STEER_SERVE_SOURCES ${CMAKE_SOURCE_DIR}/tools/serve/*.c)
target_sources(steer_cli PRIVATE ${STEER_SERVE_SOURCES})
target_link_libraries(steer_cli PRIVATE PkgConfig::MHD Threads::Threads)
