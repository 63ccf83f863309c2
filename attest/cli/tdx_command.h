#ifndef ATTEST_CLI_TDX_COMMAND_H_
#define ATTEST_CLI_TDX_COMMAND_H_

#include <CLI/CLI.hpp>

namespace attest::cli {

void AddTdxCommand(CLI::App& app, int* exit_code);

}  // namespace attest::cli

#endif  // ATTEST_CLI_TDX_COMMAND_H_
