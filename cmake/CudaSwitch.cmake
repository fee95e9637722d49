# CUDA switch: OFF (default), ON (required) or AUTO (use if a compiler works).
# No CUDA kernels exist yet; the switch records the decision in build_info so
# wheels say what they contain.
set(MN_CUDA "OFF" CACHE STRING "Build CUDA kernels: OFF, ON or AUTO")
set_property(CACHE MN_CUDA PROPERTY STRINGS OFF ON AUTO)
set(MN_WITH_CUDA OFF)
if(MN_CUDA STREQUAL "ON" OR MN_CUDA STREQUAL "AUTO")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    set(MN_WITH_CUDA ON)
  elseif(MN_CUDA STREQUAL "ON")
    message(FATAL_ERROR "MN_CUDA=ON but no working CUDA compiler was found")
  endif()
endif()
message(STATUS "maskrcnn_native: CUDA kernels ${MN_WITH_CUDA}")
