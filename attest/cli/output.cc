#include "output.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "attest/files.h"
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

absl::StatusOr<std::vector<uint8_t>> ReadInput(const std::string& path, size_t max) {
  auto b = ReadFileBounded(path, max);
  if (!b.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", b.status().message()));
  return b;
}

absl::StatusOr<tuf::Key> ReadLogKey(const std::string& path) {
  ASSIGN_OR_RETURN(auto bytes, ReadInput(path, 16 * 1024));
  auto j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (j.is_discarded()) return absl::InvalidArgumentError(path + ": not JSON");
  if (j.is_object() && j.contains("key")) j = j["key"];  // log.json as a whole
  return tuf::ParseKey(j);
}

int RunChecked(absl::string_view command, bool as_json,
               const std::function<absl::Status(nlohmann::json&)>& run,
               const std::function<void(const nlohmann::json&)>& human) {
  nlohmann::json out = {{"checks", nlohmann::json::array()}};
  const absl::Status st = run(out);
  if (!st.ok()) return ReportFailure(command, st);
  out["verified"] = true;
  if (as_json) {
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    human(out);
    for (const auto& c : out["checks"]) std::printf("  ok    %s\n", c.get<std::string>().c_str());
  }
  return 0;
}

}  // namespace attest::cli
