// Shared output conventions of appliance-verify subcommands.
#ifndef ATTEST_CLI_OUTPUT_H_
#define ATTEST_CLI_OUTPUT_H_

#include <nlohmann/json.hpp>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "attest/check.h"

namespace attest::cli {

// [{name, ok, detail}, ...]
nlohmann::json ChecksToJson(const CheckLog& log);

// Human-readable check list ("  ok    name  detail").
void PrintChecks(const CheckLog& log);

// Prints the one-line error for a failed command to stderr and returns its exit code
// (1 verification failure, 2 usage/malformed input).
int ReportFailure(absl::string_view command, const absl::Status& status);

}  // namespace attest::cli

#endif  // ATTEST_CLI_OUTPUT_H_
