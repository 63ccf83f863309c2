// appliance-verify release (issue 8): a coordinator's check of the release channel.
#ifndef ATTEST_CLI_RELEASE_COMMAND_H_
#define ATTEST_CLI_RELEASE_COMMAND_H_

#include <CLI/CLI.hpp>

namespace attest::cli {

void AddReleaseCommand(CLI::App& app, int* exit_code);

}  // namespace attest::cli

#endif  // ATTEST_CLI_RELEASE_COMMAND_H_
