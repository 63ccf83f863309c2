// TCG PC Client firmware event logs (TCG PC Client Platform Firmware Profile): the SHA-1 legacy
// format (TCG_PCR_EVENT) and the crypto-agile format (Spec ID Event03 header, TCG_PCR_EVENT2),
// replayed into every bank the header declares.
//
// Everything in a log is UNTRUSTED until its replay equals a PCR value covered by a verified
// quote: the types say so (UntrustedEvent), and CheckLogAgainstQuote is the only way to learn
// which PCRs — and so which events — a quote vouches for.
#ifndef ATTEST_TPM_EVENTLOG_H_
#define ATTEST_TPM_EVENTLOG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attest/check.h"
#include "attest/tpm/hash_alg.h"

namespace attest::tpm {

// Event types other parts of libattest name (TCG PC Client Platform Firmware Profile, "Events").
inline constexpr uint32_t kEvNoAction = 0x00000003;
inline constexpr uint32_t kEvSeparator = 0x00000004;
inline constexpr uint32_t kEvEventTag = 0x00000006;
inline constexpr uint32_t kEvIpl = 0x0000000D;
inline constexpr uint32_t kEvEfiVariableDriverConfig = 0x80000001;
inline constexpr uint32_t kEvEfiBootServicesApplication = 0x80000003;
inline constexpr uint32_t kEvEfiAction = 0x80000007;

// Bounds, checked before anything is allocated or hashed.
inline constexpr size_t kMaxEventLogSize = 8 * 1024 * 1024;
inline constexpr size_t kMaxEventDataSize = 1024 * 1024;
inline constexpr size_t kMaxEvents = 100000;

enum class EventLogFormat { kTcg1, kTcg2 };

struct UntrustedEvent {
  size_t index = 0;   // position in the log, the Spec ID header (if any) being 0
  size_t offset = 0;  // byte offset in the log
  uint32_t pcr = 0;
  uint32_t type = 0;
  std::map<uint16_t, std::vector<uint8_t>> digests;  // hash algorithm → digest
  std::vector<uint8_t> data;
};

struct EventLog {
  EventLogFormat format = EventLogFormat::kTcg1;
  std::vector<uint16_t> algorithms;         // banks, in header order
  std::optional<uint8_t> startup_locality;  // from a StartupLocality EV_NO_ACTION event
  std::vector<UntrustedEvent> events;       // excluding the Spec ID header
};

// A fixed-size log area (TDX CCEL) is filled with 0xFF after the last event: with
// kAllowFfPadding, an event header of all 0xFF ends the log and everything after it must be 0xFF.
enum class LogPadding { kNone, kAllowFfPadding };

absl::StatusOr<EventLog> ParseEventLog(std::span<const uint8_t> bytes,
                                       LogPadding padding = LogPadding::kNone);

std::string EventTypeName(uint32_t type);
// A one-line human description of an event's data (variable names, strings, blob ranges, ...).
std::string DescribeEvent(const UntrustedEvent& event);

struct Replay {
  PcrBanks pcrs;  // only PCRs that an extended event touches
  std::map<uint32_t, std::vector<size_t>> events_by_pcr;  // PCR → indices of extending events
  // Events whose digest is not the hash of their data, for types whose digest is defined as the
  // hash of the data. Legal for some firmware; reported, never a reason to reject the log.
  std::vector<size_t> digest_mismatches;
};

// Replay rules: PCRs start at zero, PCR0 at 00..0L after a StartupLocality event with locality L
// (3 or 4); EV_NO_ACTION is never extended; every other event extends PCR = H(PCR || digest).
absl::StatusOr<Replay> ReplayEventLog(const EventLog& log);

struct LogQuoteMatch {
  // Per bank: PCRs whose quoted value the log's replay reproduces (these events are vouched for),
  // and quoted PCRs the log does not explain (checked only against expected values or policy).
  std::map<uint16_t, std::set<uint32_t>> explained;
  std::map<uint16_t, std::set<uint32_t>> unexplained;
};

// Compares the replay with quoted PCR values (from a verified quote). Check "tpm.eventlog.replay"
// fails naming the first PCR that differs and the events that touch it; "tpm.eventlog.unexplained"
// lists what the log does not explain.
absl::StatusOr<LogQuoteMatch> CheckLogAgainstQuote(const EventLog& log, const Replay& replay,
                                                   const PcrBanks& quoted, CheckLog& check_log);

// The events a quote vouches for: those of PCRs explained in every bank compared.
std::vector<const UntrustedEvent*> VouchedEvents(const EventLog& log, const LogQuoteMatch& match);

// Compares quoted PCRs with expected values (every expected PCR must be quoted). Check
// "tpm.pcrs.expected".
absl::Status CheckExpectedPcrs(const PcrBanks& quoted, const PcrBanks& expected, CheckLog& log);

}  // namespace attest::tpm

#endif  // ATTEST_TPM_EVENTLOG_H_
