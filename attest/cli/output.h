// Shared output conventions of appliance-verify subcommands.
#ifndef ATTEST_CLI_OUTPUT_H_
#define ATTEST_CLI_OUTPUT_H_

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "attest/check.h"
#include "attest/tuf/metadata.h"

namespace attest::cli {

// [{name, ok, detail}, ...]
nlohmann::json ChecksToJson(const CheckLog& log);

// Human-readable check list ("  ok    name  detail").
void PrintChecks(const CheckLog& log);

// Prints the one-line error for a failed command to stderr and returns its exit code
// (1 verification failure, 2 usage/malformed input).
int ReportFailure(absl::string_view command, const absl::Status& status);

// A file named on the command line, bounded; InvalidArgument (exit 2) naming it if unreadable.
absl::StatusOr<std::vector<uint8_t>> ReadInput(const std::string& path, size_t max);

// The transparency log's public key: TUF key JSON, or the log's log.json as a whole.
absl::StatusOr<tuf::Key> ReadLogKey(const std::string& path);

// Runs a command that fills `out` ({"checks": [names...], ...}): on failure reports it
// (ReportFailure) and returns 1 or 2; on success prints `out` with "verified": true as JSON, or
// `human(out)` then one "  ok    CHECK" line per check, and returns 0.
int RunChecked(absl::string_view command, bool as_json,
               const std::function<absl::Status(nlohmann::json&)>& run,
               const std::function<void(const nlohmann::json&)>& human);

}  // namespace attest::cli

#endif  // ATTEST_CLI_OUTPUT_H_
