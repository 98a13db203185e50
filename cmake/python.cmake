# Python package python/steer (docs/PYTHON.md): pytest over this build's shared
# libraries (STEER_LIBRARY) and CLI (STEER_BIN). Debian's interpreter, which has
# python3-numpy, python3-pytest and python3-matplotlib (scripts/setup.sh).
# Not in the sanitizer or fuzz builds: their shared libraries need the ASan
# runtime loaded before the interpreter.
if(NOT STEER_SANITIZE AND NOT STEER_FUZZ)
  find_program(STEER_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT STEER_PYTHON3)
    find_program(STEER_PYTHON3 NAMES python3 REQUIRED)
  endif()
  add_test(NAME python_tests
    COMMAND ${STEER_PYTHON3} -m pytest -q -p no:cacheprovider ${CMAKE_SOURCE_DIR}/python/tests)
  set_tests_properties(python_tests PROPERTIES
    ENVIRONMENT "STEER_LIBRARY=$<TARGET_FILE:steer_core>;STEER_BIN=$<TARGET_FILE:steer_cli>;STEER_REPO=${CMAKE_SOURCE_DIR};PYTHONDONTWRITEBYTECODE=1;MPLBACKEND=Agg;OMP_NUM_THREADS=2;OMP_WAIT_POLICY=PASSIVE"
    TIMEOUT 300)
endif()
