# LATTE_CUDA = AUTO (default: the CUDA backend is built when nvcc is found) | ON | OFF.
# Sets LATTE_WITH_CUDA. Code is built for sm_90 (H100/H200) plus compute_90 PTX, so newer GPUs
# can JIT it; override with -DCMAKE_CUDA_ARCHITECTURES.
set(LATTE_CUDA AUTO CACHE STRING "Build the CUDA backend: AUTO (when nvcc is found), ON or OFF")
set_property(CACHE LATTE_CUDA PROPERTY STRINGS AUTO ON OFF)
set(LATTE_WITH_CUDA OFF)
if(NOT LATTE_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90)   # "90" = sm_90 SASS + compute_90 PTX
    endif()
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)   # CMake 3.25 has no C++20 flags for nvcc; .cu files need only 17
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    set(LATTE_WITH_CUDA ON)
    message(STATUS "latte: building the CUDA backend (${CMAKE_CUDA_COMPILER}, architectures ${CMAKE_CUDA_ARCHITECTURES})")
  elseif(LATTE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "LATTE_CUDA=ON but no CUDA compiler was found: put nvcc on PATH or set CMAKE_CUDA_COMPILER")
  else()
    message(STATUS "latte: nvcc not found, building without CUDA (the CUDA tests will report themselves skipped)")
  endif()
endif()
