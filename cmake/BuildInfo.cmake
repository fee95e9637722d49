# Bakes compiler, flags and the CUDA decision into the extension (mn.build_info()).
function(mn_build_info target)
  string(TOUPPER "${CMAKE_BUILD_TYPE}" _bt)
  set(_flags "${CMAKE_CXX_FLAGS} ${CMAKE_CXX_FLAGS_${_bt}} -O3 -Wall -Wextra")
  string(STRIP "${_flags}" _flags)
  target_compile_definitions(${target} PRIVATE
    MN_BUILD_COMPILER="${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION}"
    MN_BUILD_FLAGS="${_flags}"
    MN_BUILD_TYPE="${CMAKE_BUILD_TYPE}"
    MN_BUILD_WITH_CUDA=$<BOOL:${MN_WITH_CUDA}>
    MN_BUILD_CUDA_VERSION="${MN_CUDA_VERSION}"
    MN_BUILD_CUDA_ARCHS="${MN_CUDA_ARCHS}")
endfunction()
