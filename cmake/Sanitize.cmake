# MN_SANITIZE=1 (cmake -DMN_SANITIZE=ON, or the environment variable MN_SANITIZE=1
# at configure time): build the core and the extension with AddressSanitizer and
# UndefinedBehaviorSanitizer, -O1 -g, frame pointers kept; UBSan findings abort
# (-fno-sanitize-recover). Python itself is not instrumented, so run with the
# toolchain's runtime preloaded and leak checks off for the interpreter:
#
#   LD_PRELOAD=$(gcc -print-file-name=libasan.so) \
#   ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
#   python -m pytest tests/ops
#
# .ci/run has a job that does exactly this (see README "Reliability").
if(DEFINED ENV{MN_SANITIZE} AND NOT "$ENV{MN_SANITIZE}" STREQUAL "" AND NOT "$ENV{MN_SANITIZE}" STREQUAL "0")
  set(_mn_sanitize_default ON)
else()
  set(_mn_sanitize_default OFF)
endif()
option(MN_SANITIZE "Build with -fsanitize=address,undefined" ${_mn_sanitize_default})

if(MN_SANITIZE)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    message(FATAL_ERROR "MN_SANITIZE needs GCC or Clang")
  endif()
  set(MN_SANITIZE_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined
      -fno-omit-frame-pointer -g -O1)
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${MN_SANITIZE_FLAGS}>")
  add_link_options(-fsanitize=address,undefined)
  message(STATUS "maskrcnn_native: MN_SANITIZE=ON (${MN_SANITIZE_FLAGS})")
endif()
