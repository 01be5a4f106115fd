# Finds the Debian packages latte builds on. Each failure names the package to install.

# latte loads both at run time (backends/cpu/blas.cpp); the libraries are looked for here so that a
# machine without them fails at configure time rather than at the first matmul.
find_path(LATTE_CBLAS_INCLUDE cblas.h PATH_SUFFIXES openblas x86_64-linux-gnu/openblas-pthread)
find_library(LATTE_OPENBLAS_LIB NAMES openblas)
if(NOT LATTE_CBLAS_INCLUDE OR NOT LATTE_OPENBLAS_LIB)
  message(FATAL_ERROR "OpenBLAS not found: install it with `apt-get install libopenblas-dev`")
endif()

find_path(LATTE_LAPACKE_INCLUDE lapacke.h)
find_library(LATTE_LAPACKE_LIB NAMES lapacke)
if(NOT LATTE_LAPACKE_INCLUDE OR NOT LATTE_LAPACKE_LIB)
  message(FATAL_ERROR "LAPACKE not found: install it with `apt-get install liblapacke-dev`")
endif()

find_package(Threads REQUIRED)

if(LATTE_BUILD_TESTS)
  find_package(Catch2 2.13 QUIET)
  if(NOT Catch2_FOUND)
    message(FATAL_ERROR "Catch2 2.13 not found: install it with `apt-get install catch2` (or configure with -DLATTE_BUILD_TESTS=OFF)")
  endif()
endif()

if(LATTE_BUILD_BENCHMARKS)
  find_package(benchmark QUIET)
  if(NOT benchmark_FOUND)
    message(FATAL_ERROR "Google Benchmark not found: install it with `apt-get install libbenchmark-dev` (or configure with -DLATTE_BUILD_BENCHMARKS=OFF)")
  endif()
endif()
