# CUDA switch: AUTO (default: build the CUDA kernels when a CUDA compiler
# works), ON (required: fail without one) or OFF (CPU kernels only).
# Architectures default to 80 and 90 as real code plus compute_90 PTX, so newer
# GPUs JIT the PTX. The CUDA runtime is linked statically (CUDA::cudart_static)
# and torch is never linked: the same wheel imports and runs its CPU ops on a
# machine with no GPU or driver (mn.cuda_available() then says False).
set(MN_CUDA "AUTO" CACHE STRING "Build CUDA kernels: AUTO, ON or OFF")
set_property(CACHE MN_CUDA PROPERTY STRINGS AUTO ON OFF)
string(TOUPPER "${MN_CUDA}" _mn_cuda)
set(MN_WITH_CUDA OFF)
set(MN_CUDA_VERSION "")
set(MN_CUDA_ARCHS "")
if(_mn_cuda STREQUAL "ON" OR _mn_cuda STREQUAL "AUTO")
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
    set(CMAKE_CUDA_ARCHITECTURES "80-real;90-real;90-virtual")
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(MN_WITH_CUDA ON)
    set(MN_CUDA_VERSION "${CMAKE_CUDA_COMPILER_VERSION}")
    string(REPLACE ";" "," MN_CUDA_ARCHS "${CMAKE_CUDA_ARCHITECTURES}")
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  elseif(_mn_cuda STREQUAL "ON")
    message(FATAL_ERROR "MN_CUDA=ON but no working CUDA compiler was found (set CMAKE_CUDA_COMPILER)")
  endif()
elseif(NOT _mn_cuda STREQUAL "OFF")
  message(FATAL_ERROR "MN_CUDA must be AUTO, ON or OFF, got '${MN_CUDA}'")
endif()
message(STATUS "maskrcnn_native: CUDA kernels ${MN_WITH_CUDA} ${MN_CUDA_VERSION} [${MN_CUDA_ARCHS}]")

# nvcc flags for the kernels: warnings on (host compiler too), no FMA
# contraction (the shared arithmetic must round as the CPU kernels do; explicit
# fma() calls stay fused), no fast math.
function(mn_cuda_target target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:--fmad=false -Xcompiler=-Wall,-Wextra,-Wno-unknown-pragmas
      -Wno-deprecated-gpu-targets -O3>)
  set_target_properties(${target} PROPERTIES CUDA_SEPARABLE_COMPILATION OFF
                                             CUDA_RUNTIME_LIBRARY Static)
endfunction()
