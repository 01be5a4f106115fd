// The `latte` program: one binary, one subcommand per experiment.
#include <cstdio>
#include <cstring>
#include <exception>

#include "experiments/commands.h"

namespace latte::experiments {
namespace {

void usage(std::FILE* to) {
    std::fprintf(to,
                 "usage: latte COMMAND [flags]   (latte COMMAND --help for its flags)\n\n"
                 "commands:\n"
                 "  demo      train MHA, GQA and MLA students on one teacher and compare them\n"
                 "  train     teacher-student regression for one model, with loss curve and weights\n"
                 "  forward   run a module from a .safetensors file (outputs and gradients)\n"
                 "  compare   GQA vs MLA at an equal KV-cache budget, over seeds\n"
                 "  convert   turn a trained GQA checkpoint into the equivalent MLA, checked\n"
                 "  absorb    the spec's Part 13: vanilla vs absorbed MLA, error and time\n"
                 "  decode    token-by-token decoding with a K/V or latent cache: sizes, tokens/s\n"
                 "  lm        a small decoder LM on synthetic token tasks: recall, copy, modadd\n"
                 "  info      the CPU, BLAS kernels, threads and CUDA devices latte uses\n");
}

}  // namespace

int latte_main(int argc, char** argv) {
    try {
        if (argc >= 2 && (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h"))) {
            usage(stdout);
            return 0;
        }
        if (argc < 2) {
            std::fprintf(stderr, "latte: no command given\n");
            usage(stderr);
            return 2;
        }
        const char* cmd = argv[1];
        if (!std::strcmp(cmd, "demo")) return cmd_demo(argc, argv, 2);
        if (!std::strcmp(cmd, "train")) return cmd_train(argc, argv, 2);
        if (!std::strcmp(cmd, "forward")) return cmd_forward(argc, argv, 2);
        if (!std::strcmp(cmd, "compare")) return cmd_compare(argc, argv, 2);
        if (!std::strcmp(cmd, "convert")) return cmd_convert(argc, argv, 2);
        if (!std::strcmp(cmd, "absorb")) return cmd_absorb(argc, argv, 2);
        if (!std::strcmp(cmd, "decode")) return cmd_decode(argc, argv, 2);
        if (!std::strcmp(cmd, "info")) return cmd_info(argc, argv, 2);
        if (!std::strcmp(cmd, "lm")) return cmd_lm(argc, argv, 2);
        std::fprintf(stderr, "latte: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    } catch (const std::exception& e) {
        const bool named = std::strncmp(e.what(), "latte ", 6) == 0 || std::strncmp(e.what(), "latte: ", 7) == 0;
        std::fprintf(stderr, "%s%s\n", named ? "" : "latte: ", e.what());
        return 1;
    }
}

}  // namespace latte::experiments
