# Bakes compiler, flags and the CUDA decision into the extension (mn.build_info()).
function(mn_build_info target)
  string(TOUPPER "${CMAKE_BUILD_TYPE}" _bt)
  # The flags the C++ core really compiles with: the build type's, the core's
  # own options, the warnings and, when on, the sanitizers.
  list(JOIN MN_CORE_CXX_OPTIONS " " _core)
  list(JOIN MN_WARNING_OPTIONS " " _warn)
  set(_flags "${CMAKE_CXX_FLAGS} ${CMAKE_CXX_FLAGS_${_bt}} ${_core} ${_warn}")
  if(MN_SANITIZE)
    list(JOIN MN_SANITIZE_FLAGS " " _san)
    string(APPEND _flags " ${_san}")
  endif()
  string(REGEX REPLACE "  +" " " _flags "${_flags}")
  string(STRIP "${_flags}" _flags)
  target_compile_definitions(${target} PRIVATE
    MN_BUILD_COMPILER="${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION}"
    MN_BUILD_FLAGS="${_flags}"
    MN_BUILD_TYPE="${CMAKE_BUILD_TYPE}"
    MN_BUILD_WITH_CUDA=$<BOOL:${MN_WITH_CUDA}>
    MN_BUILD_CUDA_VERSION="${MN_CUDA_VERSION}"
    MN_BUILD_CUDA_ARCHS="${MN_CUDA_ARCHS}")
endfunction()
