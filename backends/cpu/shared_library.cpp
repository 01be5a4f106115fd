#include "backends/cpu/shared_library.h"

#include <string>

#include "backends/cpu/cpu_features.h"

namespace latte::cpu {

void* open_library(const char* who, std::initializer_list<const char*> names, const char* package) {
    choose_openblas_core();
    std::string errors;
    for (const char* name : names) {
        if (void* handle = ::dlopen(name, RTLD_NOW | RTLD_LOCAL)) return handle;
        errors += std::string(" ") + ::dlerror() + ";";
    }
    LATTE_FAIL(who, ": cannot load the library (", errors, " ); install it with `apt-get install ", package, "`");
}

}  // namespace latte::cpu
