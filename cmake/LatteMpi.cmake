# LATTE_MPI = AUTO (default: built when Open MPI is found) | ON | OFF. Sets LATTE_WITH_MPI, and
# LATTE_WITH_NCCL when the CUDA backend is built too and the CUDA toolkit's lib folder holds
# libnccl.so (with nccl.h in its include folder): NCCL then carries CUDA tensors.
set(LATTE_MPI AUTO CACHE STRING "Build the MPI process group: AUTO (when Open MPI is found), ON or OFF")
set_property(CACHE LATTE_MPI PROPERTY STRINGS AUTO ON OFF)
set(LATTE_WITH_MPI OFF)
set(LATTE_WITH_NCCL OFF)
if(NOT LATTE_MPI STREQUAL "OFF")
  find_package(MPI COMPONENTS CXX QUIET)
  if(MPI_CXX_FOUND)
    set(LATTE_WITH_MPI ON)
    message(STATUS "latte: building the MPI process group (MPI ${MPI_CXX_VERSION})")
  elseif(LATTE_MPI STREQUAL "ON")
    message(FATAL_ERROR "LATTE_MPI=ON but MPI was not found: install it with `apt-get install libopenmpi-dev openmpi-bin`")
  else()
    message(STATUS "latte: MPI not found, building without the process group (the MPI tests will report themselves skipped)")
  endif()
endif()
if(LATTE_WITH_MPI AND LATTE_WITH_CUDA)
  find_library(LATTE_NCCL_LIB nccl HINTS ${CUDAToolkit_LIBRARY_DIR})
  find_path(LATTE_NCCL_INCLUDE nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  # NCCL 2.14 brought what the transport uses (non-blocking communicators, ncclCommFinalize);
  # nccl.h says its version.
  set(LATTE_NCCL_VERSION "")
  if(LATTE_NCCL_INCLUDE)
    file(STRINGS ${LATTE_NCCL_INCLUDE}/nccl.h _latte_nccl_defines REGEX "^#define NCCL_(MAJOR|MINOR|PATCH) +[0-9]+")
    foreach(_part MAJOR MINOR PATCH)
      string(REGEX MATCH "NCCL_${_part} +([0-9]+)" _match "${_latte_nccl_defines}")
      set(_latte_nccl_${_part} "${CMAKE_MATCH_1}")
    endforeach()
    set(LATTE_NCCL_VERSION "${_latte_nccl_MAJOR}.${_latte_nccl_MINOR}.${_latte_nccl_PATCH}")
  endif()
  if(LATTE_NCCL_LIB AND LATTE_NCCL_INCLUDE AND LATTE_NCCL_VERSION VERSION_LESS 2.14)
    message(STATUS "latte: NCCL ${LATTE_NCCL_VERSION} (${LATTE_NCCL_INCLUDE}/nccl.h) is older than 2.14: building "
                   "without the NCCL transport, so CUDA tensors cannot be communicated")
  elseif(LATTE_NCCL_LIB AND LATTE_NCCL_INCLUDE)
    set(LATTE_WITH_NCCL ON)
    # latte::nccl, which latteConfig.cmake defines the same way on the consumer's machine: the
    # exported targets name it, never this machine's path to libnccl.so.
    add_library(latte::nccl UNKNOWN IMPORTED)
    set_target_properties(latte::nccl PROPERTIES IMPORTED_LOCATION ${LATTE_NCCL_LIB}
      INTERFACE_INCLUDE_DIRECTORIES ${LATTE_NCCL_INCLUDE})
    message(STATUS "latte: building the NCCL transport (NCCL ${LATTE_NCCL_VERSION}, ${LATTE_NCCL_LIB})")
  else()
    message(STATUS "latte: libnccl.so or nccl.h not found next to the CUDA toolkit: CUDA tensors cannot be communicated")
  endif()
endif()
