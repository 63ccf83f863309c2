#include "logging.h"

#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>
#include <vector>

namespace appliance::supervisor {
namespace {

bool JournalPresent() {
  static const bool present =
      access("/run/systemd/journal/socket", W_OK) == 0 && getenv("APPLIANCE_LOG_STDERR") == nullptr;
  return present;
}

}  // namespace

void LogEvent(Level level, const std::string& event, const std::string& message,
              const std::map<std::string, std::string>& fields) {
  if (JournalPresent()) {
    std::vector<std::string> parts = {
        "MESSAGE=" + message, "PRIORITY=" + std::to_string(static_cast<int>(level)),
        "SYSLOG_IDENTIFIER=appliance-supervisor", "APPLIANCE_EVENT=" + event};
    for (const auto& [k, v] : fields) parts.push_back(k + "=" + v);
    std::vector<iovec> iov;
    for (auto& p : parts) iov.push_back({p.data(), p.size()});
    sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
    // Errors and readiness also as one stderr line: the unit sends stderr to the console too
    // (StandardError=journal+console), which is what the host of an appliance can read.
    if (level == Level::kError || event == "ready") {
      std::string line = "appliance-supervisor: " + event + ": " + message + "\n";
      fputs(line.c_str(), stderr);
    }
    return;
  }
  static std::mutex mu;
  std::string line = "appliance-supervisor: " + event + ": " + message;
  for (const auto& [k, v] : fields) line += " " + k + "=" + v;
  line += "\n";
  std::lock_guard<std::mutex> lock(mu);
  fputs(line.c_str(), stderr);
}

}  // namespace appliance::supervisor
