// The `latte` program: one binary, one subcommand per experiment (experiments/program.cpp).
#include "experiments/commands.h"

int main(int argc, char** argv) { return latte::experiments::latte_main(argc, argv); }
