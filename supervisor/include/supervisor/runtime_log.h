// The appliance's runtime event log (DESIGN §3, issue 5 item 2): launch configuration digest,
// model container manifest digest, container restarts, release version. Each event is a CEL
// record (attest/tpm/cel.h, content type "appliance", digests = H(event name TLV || data TLV)).
//
// Log first, then extend, under one lock: an event is in the log before any measurement register
// holds it, so a verifier replaying the log can always explain the registers (a failed extend
// leaves a logged event the registers lack, which replay reports; never the reverse).
#ifndef SUPERVISOR_RUNTIME_LOG_H_
#define SUPERVISOR_RUNTIME_LOG_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "attest/tpm/cel.h"

namespace appliance::supervisor {

// A measurement register the log extends: PCR 15 of a vTPM in the TCB, TDX RTMR3, or the
// software register below. Extend receives the record's index and its digests per algorithm.
class MeasurementRegister {
 public:
  virtual ~MeasurementRegister() = default;
  virtual std::string name() const = 0;
  virtual absl::Status Extend(uint32_t index,
                              const std::map<uint16_t, std::vector<uint8_t>>& digests) = 0;
};

// A register held in memory: value = H(value || digest) per bank, from zeros. What SEV-SNP without
// a trusted vTPM has (the binding then carries the digest of the log itself), and what tests use
// to compare a replay with.
class SoftwareRegister : public MeasurementRegister {
 public:
  explicit SoftwareRegister(std::vector<uint16_t> algs) : algs_(std::move(algs)) {}
  std::string name() const override { return "software"; }
  absl::Status Extend(uint32_t index,
                      const std::map<uint16_t, std::vector<uint8_t>>& digests) override;
  // index → alg → value
  std::map<uint32_t, std::map<uint16_t, std::vector<uint8_t>>> values() const;

 private:
  std::vector<uint16_t> algs_;
  mutable std::mutex mu_;
  std::map<uint32_t, std::map<uint16_t, std::vector<uint8_t>>> values_;
};

class RuntimeLog {
 public:
  static constexpr uint32_t kRuntimePcr = 15;  // PCR 15 / RTMR3 (CC MR index 4)

  // `algs`: the digests each record carries (e.g. SHA-256 for PCR 15 and SHA-384 for RTMR3).
  RuntimeLog(std::vector<uint16_t> algs,
             std::vector<std::shared_ptr<MeasurementRegister>> registers);

  // Continues a log written by an earlier run of the supervisor in this boot (its registers still
  // hold those events): only on an empty log; the records must be well formed and their replay
  // must equal `expected` (register values per bank) — otherwise the registers hold events
  // nobody can explain and the supervisor must not serve (FailedPrecondition).
  absl::Status Restore(const std::string& cel_json,
                       const std::map<uint16_t, std::vector<uint8_t>>& expected);
  // After every append, the log is also written (atomically) to this file, so that a restarted
  // supervisor can Restore it. Empty: not persisted.
  void set_persist_path(std::string path) { persist_path_ = std::move(path); }
  // Events of a given record, for checks after a restore.
  std::vector<attest::tpm::CelRecord> records() const;

  // Appends an event, then extends every register. A register failure is returned naming the
  // register; the event stays logged (see above). Bounded: at most attest's kMaxCelRecords.
  absl::StatusOr<uint64_t> Append(absl::string_view event, std::span<const uint8_t> data);

  // The log as CEL-JSON (what the evidence carries as runtime_event_log), and its record count.
  std::string SerializeJson() const;
  size_t size() const;

  // Runs `fn` with the serialized log while holding the lock that Append holds across its
  // extends: no event can be logged or extended while `fn` (e.g. a quote over PCR 15) runs, so
  // the log it sees is exactly what the registers hold.
  absl::Status WithSnapshot(
      const std::function<absl::Status(const std::string& cel_json)>& fn) const;

 private:
  std::vector<uint16_t> algs_;
  std::vector<std::shared_ptr<MeasurementRegister>> registers_;
  void PersistLocked() const;
  mutable std::mutex mu_;
  attest::tpm::Cel records_;
  std::string persist_path_;
};

}  // namespace appliance::supervisor

#endif  // SUPERVISOR_RUNTIME_LOG_H_
