// appliance-verify log (issue 8): transparency-log checkpoints and proofs.
#ifndef ATTEST_CLI_LOG_COMMAND_H_
#define ATTEST_CLI_LOG_COMMAND_H_

#include <CLI/CLI.hpp>

namespace attest::cli {

void AddLogCommand(CLI::App& app, int* exit_code);

}  // namespace attest::cli

#endif  // ATTEST_CLI_LOG_COMMAND_H_
