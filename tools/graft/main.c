/* tools/graft/main.c - the `graft` program: picks the subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: graft <command> [options]\n"
    "\n"
    "Transfer learning on ONNX models: cut a pretrained backbone's classifier off,\n"
    "train a new head on your images on the CPU, export standard ONNX.\n"
    "\n"
    "commands:\n"
    "  inspect MODEL            inputs, outputs, ops, parameters, the feature cut\n"
    "  run MODEL --in X.pb ...  run a model on TensorProto inputs, write output_N.pb\n"
    "  train [options]          fine-tune a new head on a backbone, export, evaluate\n"
    "  eval MODEL [options]     accuracy, per-class P/R/F1 and confusion matrix\n"
    "\n"
    "  graft <command> --help   options of a command\n"
    "  graft --version          version\n"
    "\n"
    "Exit status: 0 success, 1 error (model, data, file), 2 bad command line.\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("graft %s\n", GRAFT_VERSION_STRING);
        return CLI_OK;
    }
    if (strcmp(cmd, "inspect") == 0)
        return cli_cmd_inspect(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0)
        return cli_cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "train") == 0)
        return cli_cmd_train(argc - 1, argv + 1);
    if (strcmp(cmd, "eval") == 0)
        return cli_cmd_eval(argc - 1, argv + 1);
    if (cmd[0] == '-')
        return cli_fail(CLI_USAGE, "unknown option '%s' (see graft --help)", cmd);
    return cli_fail(CLI_USAGE, "unknown command '%s' (see graft --help)", cmd);
}
