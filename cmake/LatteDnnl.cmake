# LATTE_DNNL = AUTO (default: built when oneDNN's headers and library are found) | ON | OFF. Sets
# LATTE_WITH_DNNL. latte loads libdnnl.so.2 at run time (backends/cpu/dnnl_matmul.cpp), as it does
# OpenBLAS, so nothing links it: the headers compile that one file, and the library is looked for
# here so that a machine without it says so at configure time. Without oneDNN the same file
# compiles as refusals: bf16 products still run on latte's own kernels where the CPU has
# AVX512_BF16, and report themselves unsupported on an AMX-only CPU.
set(LATTE_DNNL AUTO CACHE STRING "Use oneDNN for bf16 products on AMX CPUs (and in bench_ops): AUTO (when libdnnl-dev is found), ON or OFF")
set_property(CACHE LATTE_DNNL PROPERTY STRINGS AUTO ON OFF)
set(LATTE_WITH_DNNL OFF)
if(NOT LATTE_DNNL STREQUAL "OFF")
  find_path(LATTE_DNNL_INCLUDE oneapi/dnnl/dnnl.h)
  find_library(LATTE_DNNL_LIB NAMES dnnl)
  if(LATTE_DNNL_INCLUDE AND LATTE_DNNL_LIB)
    set(LATTE_WITH_DNNL ON)
    message(STATUS "latte: oneDNN for bf16 products on AMX CPUs (${LATTE_DNNL_LIB}, loaded at run time)")
  elseif(LATTE_DNNL STREQUAL "ON")
    message(FATAL_ERROR "LATTE_DNNL=ON but oneDNN was not found: install it with `apt-get install libdnnl-dev`")
  else()
    message(STATUS "latte: oneDNN not found (libdnnl-dev): bf16 products on latte's own AVX512_BF16 kernels only")
  endif()
endif()
if(LATTE_WITH_DNNL)
  set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/backends/cpu/dnnl_matmul.cpp PROPERTIES
    COMPILE_DEFINITIONS LATTE_WITH_DNNL INCLUDE_DIRECTORIES ${LATTE_DNNL_INCLUDE})
endif()
