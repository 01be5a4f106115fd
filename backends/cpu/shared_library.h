// Loading OpenBLAS and LAPACKE at run time (blas.cpp, lapack.cpp), after latte has chosen the
// OpenBLAS kernels for this CPU (cpu_features.h): both libraries read OPENBLAS_CORETYPE only
// while they load.
#pragma once
#include <dlfcn.h>

#include <initializer_list>

#include "../../core/error.h"

namespace latte::cpu {

// The first of `names` that loads (it stays loaded for the life of the process); throws naming
// `who`, every loader error and the Debian `package` when none does.
void* open_library(const char* who, std::initializer_list<const char*> names, const char* package);

// out = the function `name` of `handle`; a missing one throws when `required`, else stays null.
template <class F>
void bind_symbol(void* handle, const char* who, const char* name, F& out, bool required = true) {
    out = reinterpret_cast<F>(::dlsym(handle, name));
    LATTE_CHECK(out != nullptr || !required, who, ": ", name, " is missing from the loaded library");
}

}  // namespace latte::cpu
