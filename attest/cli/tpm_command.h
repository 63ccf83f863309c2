#ifndef ATTEST_CLI_TPM_COMMAND_H_
#define ATTEST_CLI_TPM_COMMAND_H_

#include <CLI/CLI.hpp>

namespace attest::cli {

// `tpm-quote`, `eventlog` and `azure`; each stores its exit code in *exit_code when it runs.
void AddTpmQuoteCommand(CLI::App& app, int* exit_code);
void AddEventLogCommand(CLI::App& app, int* exit_code);
void AddAzureCommand(CLI::App& app, int* exit_code);

}  // namespace attest::cli

#endif  // ATTEST_CLI_TPM_COMMAND_H_
