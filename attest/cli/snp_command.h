#ifndef ATTEST_CLI_SNP_COMMAND_H_
#define ATTEST_CLI_SNP_COMMAND_H_

#include <CLI/CLI.hpp>

namespace attest::cli {

// Registers `snp` on the app; when it runs, its exit code is stored in *exit_code.
void AddSnpCommand(CLI::App& app, int* exit_code);

}  // namespace attest::cli

#endif  // ATTEST_CLI_SNP_COMMAND_H_
