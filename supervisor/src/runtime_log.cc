#include "supervisor/runtime_log.h"

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "attest/check.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/tpm/hash_alg.h"

namespace appliance::supervisor {

absl::Status SoftwareRegister::Extend(uint32_t index,
                                      const std::map<uint16_t, std::vector<uint8_t>>& digests) {
  std::lock_guard<std::mutex> lock(mu_);
  for (uint16_t alg : algs_) {
    auto d = digests.find(alg);
    if (d == digests.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("software register: no ", attest::tpm::HashAlgName(alg), " digest"));
    }
    auto& value = values_[index][alg];
    if (value.empty()) value.assign(d->second.size(), 0);
    ASSIGN_OR_RETURN(value, attest::tpm::Extend(alg, value, d->second));
  }
  return absl::OkStatus();
}

std::map<uint32_t, std::map<uint16_t, std::vector<uint8_t>>> SoftwareRegister::values() const {
  std::lock_guard<std::mutex> lock(mu_);
  return values_;
}

RuntimeLog::RuntimeLog(std::vector<uint16_t> algs,
                       std::vector<std::shared_ptr<MeasurementRegister>> registers)
    : algs_(std::move(algs)), registers_(std::move(registers)) {}

absl::StatusOr<uint64_t> RuntimeLog::Append(absl::string_view event,
                                            std::span<const uint8_t> data) {
  std::lock_guard<std::mutex> lock(mu_);
  if (records_.size() >= attest::tpm::kMaxCelRecords) {
    return absl::ResourceExhaustedError(
        absl::StrCat("runtime log: ", records_.size(), " records, the limit"));
  }
  const uint64_t recnum = records_.size();
  ASSIGN_OR_RETURN(auto rec,
                   attest::tpm::MakeApplianceRecord(recnum, kRuntimePcr, event, data, algs_));
  records_.push_back(rec);  // log first ...
  PersistLocked();
  for (const auto& reg : registers_) {  // ... then extend
    if (auto s = reg->Extend(rec.index, rec.digests); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("runtime log: event ", recnum, " (", event,
                                                 ") is logged but extending ", reg->name(),
                                                 " failed: ", s.message()));
    }
  }
  return recnum;
}

void RuntimeLog::PersistLocked() const {
  if (persist_path_.empty()) return;
  (void)attest::WriteFileAtomically(persist_path_, attest::tpm::SerializeCelJson(records_));
}

absl::Status RuntimeLog::Restore(const std::string& cel_json,
                                 const std::map<uint16_t, std::vector<uint8_t>>& expected) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!records_.empty())
    return absl::FailedPreconditionError("runtime log: restore into a used log");
  ASSIGN_OR_RETURN(auto cel, attest::tpm::ParseCelJson(cel_json));
  attest::CheckLog checks;
  RETURN_IF_ERROR(attest::tpm::CheckCelRecords(cel, checks));
  ASSIGN_OR_RETURN(auto replay, attest::tpm::ReplayCel(cel));
  for (const auto& [alg, value] : expected) {
    auto bank = replay.find(alg);
    std::vector<uint8_t> replayed = bank != replay.end() && bank->second.count(kRuntimePcr)
                                        ? bank->second.at(kRuntimePcr)
                                        : std::vector<uint8_t>(value.size(), 0);
    if (replayed != value) {
      return absl::FailedPreconditionError(absl::StrCat(
          "runtime log: the saved log replays to ", attest::HexEncode(replayed), " (",
          attest::tpm::HashAlgName(alg), "), the register holds ", attest::HexEncode(value)));
    }
  }
  records_ = std::move(cel);
  return absl::OkStatus();
}

std::vector<attest::tpm::CelRecord> RuntimeLog::records() const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_;
}

std::string RuntimeLog::SerializeJson() const {
  std::lock_guard<std::mutex> lock(mu_);
  return attest::tpm::SerializeCelJson(records_);
}

absl::Status RuntimeLog::WithSnapshot(
    const std::function<absl::Status(const std::string& cel_json)>& fn) const {
  std::lock_guard<std::mutex> lock(mu_);
  return fn(attest::tpm::SerializeCelJson(records_));
}

size_t RuntimeLog::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_.size();
}

}  // namespace appliance::supervisor
