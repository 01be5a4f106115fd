// The `latte` subcommands. Each takes the full argv and the index of its first flag, prints
// what it did, and returns the process exit code.
#pragma once
#include <string>

#include "core/device.h"
#include "core/dtype.h"

namespace latte::experiments {

int cmd_train(int argc, char** argv, int first);
int cmd_forward(int argc, char** argv, int first);
int cmd_demo(int argc, char** argv, int first);
int cmd_compare(int argc, char** argv, int first);
int cmd_convert(int argc, char** argv, int first);
int cmd_absorb(int argc, char** argv, int first);
int cmd_decode(int argc, char** argv, int first);
int cmd_info(int argc, char** argv, int first);
int cmd_lm(int argc, char** argv, int first);  // experiments/lm_command.cpp

// The whole `latte` program (main): runs argv[1]'s command. Usage goes to stdout for --help
// (exit 0) and to stderr when no or an unknown command is given (exit 2); an error is printed
// to stderr once prefixed "latte: " unless it already names the command ("latte train: ..."),
// and exits 1.
int latte_main(int argc, char** argv);

// `latte forward` as a function: builds the module described by the weights' metadata, runs it
// on x and y from `inputs`, and writes out (plus grad_x, grad_y, grad.<param> when the inputs
// hold grad_out) to `out`. A nan or inf among the results is refused, and nothing is written.
void run_forward(const std::string& weights, const std::string& inputs, const std::string& out, DType dtype,
                 Device device = Device::cpu());

}  // namespace latte::experiments
