#include "output.h"

#include <cstdio>
#include <string>

#include "absl/strings/string_view.h"
#include "attest/status.h"

namespace attest::cli {

nlohmann::json ChecksToJson(const CheckLog& log) {
  nlohmann::json out = nlohmann::json::array();
  for (const Check& c : log.checks()) {
    out.push_back({{"name", c.name}, {"ok", c.ok}, {"detail", c.detail}});
  }
  return out;
}

void PrintChecks(const CheckLog& log) {
  for (const Check& c : log.checks()) {
    std::printf("  %-4s %-28s %s\n", c.ok ? "ok" : "FAIL", c.name.c_str(), c.detail.c_str());
  }
}

int ReportFailure(absl::string_view command, const absl::Status& status) {
  std::string message(status.message());
  // One line: the check name and the values compared (or what was malformed).
  for (char& ch : message) {
    if (ch == '\n') ch = ' ';
  }
  std::fprintf(stderr, "appliance-verify %.*s: %s%s\n", static_cast<int>(command.size()),
               command.data(), IsVerificationFailure(status) ? "" : "error: ", message.c_str());
  return ExitCodeFor(status);
}

}  // namespace attest::cli
