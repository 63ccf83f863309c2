// Structured logs: to the journal when it is there (fields APPLIANCE_EVENT=, CONTAINER_DIGEST=,
// PCR=, ...), to stderr otherwise (one line: "appliance-supervisor: event: message k=v ...").
#ifndef SUPERVISOR_SRC_LOGGING_H_
#define SUPERVISOR_SRC_LOGGING_H_

#include <map>
#include <string>

namespace appliance::supervisor {

enum class Level { kError = 3, kWarning = 4, kInfo = 6 };

void LogEvent(Level level, const std::string& event, const std::string& message,
              const std::map<std::string, std::string>& fields = {});

}  // namespace appliance::supervisor

#endif  // SUPERVISOR_SRC_LOGGING_H_
