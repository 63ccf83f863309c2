// The vTPM through tpm2-tss ESYS (issue 5 item 3): TCTI `device:/dev/tpmrm0` in the guest,
// `swtpm:host=127.0.0.1,port=P` in tests. One restricted signing AK (ECC P-256, a primary key in
// the endorsement hierarchy) stays loaded for the supervisor's lifetime; it is the only transient
// object we hold and it is flushed on destruction. Quotes cover PCR 0-23 of every allocated bank.
// Calls are serialized under one lock; TPM_RC_RETRY/YIELDED/TESTING are retried a bounded number
// of times, then reported as "busy".
#ifndef SUPERVISOR_TPM_H_
#define SUPERVISOR_TPM_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attest/tpm/hash_alg.h"
#include "supervisor/runtime_log.h"

namespace appliance::supervisor {

// Google Cloud's vTPM NV indices (RSA): the AK certificate and the AK template.
inline constexpr uint32_t kGceAkCertNvIndexRsa = 0x01c10000;
inline constexpr uint32_t kGceAkTemplateNvIndexRsa = 0x01c10001;

// What those indices hold, checked before use (outside bytes: both indices may be larger than
// their content and are zero padded). The template: exactly one marshalled TPMT_PUBLIC of a
// restricted signing key, then only zero bytes; returns the TPMT_PUBLIC without the padding.
absl::StatusOr<std::vector<uint8_t>> GceAkTemplate(std::span<const uint8_t> nv);
// The certificate: one DER X.509 certificate (OpenSSL parses it and says where it ends), then only
// zero bytes; returns the certificate without the padding.
absl::StatusOr<std::vector<uint8_t>> GceAkCertificate(std::span<const uint8_t> nv);

struct TpmQuote {
  std::vector<uint8_t> attest;     // marshalled TPMS_ATTEST
  std::vector<uint8_t> signature;  // marshalled TPMT_SIGNATURE
  attest::tpm::PcrBanks pcrs;      // PCR 0-23 of every allocated bank, read under the same lock
};

class Tpm {
 public:
  // Opens the TCTI and the ESYS context; Unavailable with the TCTI's error when there is no TPM.
  // With `persistent_ak`, the AK is that persistent key (Azure's paravisor AK, 0x81000003: the
  // key its HCL report names), read, not created; it must be a restricted signing key.
  static absl::StatusOr<std::unique_ptr<Tpm>> Open(
      const std::string& tcti, std::optional<uint32_t> persistent_ak = std::nullopt);
  // The same without an AK (none created, none loaded; Quote fails): for probing the platform
  // before it is known which AK to use (a Google template's RSA primary takes seconds to make).
  static absl::StatusOr<std::unique_ptr<Tpm>> OpenWithoutAk(const std::string& tcti);
  ~Tpm();
  Tpm(const Tpm&) = delete;
  Tpm& operator=(const Tpm&) = delete;

  // The allocated PCR banks (TPM_ALG_IDs of hash algorithms we support), from TPM2_GetCapability.
  const std::vector<uint16_t>& banks() const { return banks_; }
  // The AK's marshalled TPMT_PUBLIC (what the evidence carries and the binding's `ak` names).
  const std::vector<uint8_t>& ak_public() const { return ak_public_; }
  // Google Cloud's vTPM (issue 11, docs/cloud.md): where NV 0x01c10001 holds the AK template
  // Google certifies, the AK is that template's primary in the endorsement hierarchy (instead of
  // our own ECC AK) and its certificate (NV 0x01c10000, DER) is here; empty elsewhere.
  const std::vector<uint8_t>& ak_certificate() const { return ak_certificate_; }
  std::string ak_origin() const { return ak_origin_; }

  // TPM2_PCR_Extend with one digest per bank given.
  absl::Status Extend(uint32_t pcr, const std::map<uint16_t, std::vector<uint8_t>>& digests);
  // TPM2_Quote over PCR 0-23 of every bank, qualifying data as given (≤ 64 bytes), then the PCR
  // values (TPM2_PCR_Read returns at most 8 per call).
  absl::StatusOr<TpmQuote> Quote(std::span<const uint8_t> qualifying_data);
  // One PCR's value in every allocated bank.
  absl::StatusOr<std::map<uint16_t, std::vector<uint8_t>>> ReadPcr(uint32_t pcr);

  // A monotonic NV counter index (TPM_NT_COUNTER, 8 bytes, AUTHREAD | AUTHWRITE | NO_DA with an
  // empty index password, defined in the owner hierarchy). The TPM only ever increments it; once
  // defined, a counter index starts at (at least) the highest count any counter on this TPM
  // ever had, so deleting and redefining it does not roll it back.
  //   NvCounterRead: nullopt if the index does not exist or was never incremented;
  //     FailedPrecondition if the index exists with other attributes (not our counter).
  absl::StatusOr<std::optional<uint64_t>> NvCounterRead(uint32_t index);
  absl::Status NvCounterDefine(uint32_t index);  // AlreadyExists if defined
  absl::Status NvCounterIncrement(uint32_t index);

  // Ordinary NV indices with owner authorization (Azure's paravisor indices, docs/cloud.md).
  //   NvDefined: whether the index is in the TPM's handle list.
  //   NvDefineOwner: an ordinary index of `size` bytes, OWNERREAD | OWNERWRITE (AlreadyExists).
  //   NvWriteOwner / NvReadOwner: the whole contents, in chunks the TPM accepts; the read is
  //     bounded by `max_size` (OutOfRange when the index is larger).
  absl::StatusOr<bool> NvDefined(uint32_t index);
  absl::Status NvDefineOwner(uint32_t index, uint16_t size);
  absl::Status NvWriteOwner(uint32_t index, std::span<const uint8_t> data);
  absl::StatusOr<std::vector<uint8_t>> NvReadOwner(uint32_t index, size_t max_size);

 private:
  struct Impl;
  explicit Tpm(std::unique_ptr<Impl> impl);
  static absl::StatusOr<std::unique_ptr<Tpm>> OpenContext(const std::string& tcti);
  absl::Status ReadBanks();
  absl::Status InitAk(std::optional<uint32_t> persistent_ak);
  // Our restricted ECC P-256 AK, or (`tmpl` non-empty) the primary of a marshalled TPMT_PUBLIC
  // template, in the endorsement hierarchy.
  absl::Status CreateAk(const std::vector<uint8_t>& tmpl);
  absl::Status LoadPersistentAk(uint32_t handle);
  absl::Status DefineNv(uint32_t index, uint32_t attributes, uint16_t size);  // owner auth
  std::unique_ptr<Impl> impl_;
  std::vector<uint16_t> banks_;
  std::vector<uint8_t> ak_public_;
  std::vector<uint8_t> ak_certificate_;
  std::string ak_origin_;
};

// PCR 15 of a vTPM, as a runtime-log register.
class TpmRegister : public MeasurementRegister {
 public:
  TpmRegister(std::shared_ptr<Tpm> tpm, uint32_t pcr) : tpm_(std::move(tpm)), pcr_(pcr) {}
  std::string name() const override { return "vTPM PCR " + std::to_string(pcr_); }
  absl::Status Extend(uint32_t index,
                      const std::map<uint16_t, std::vector<uint8_t>>& digests) override;

 private:
  std::shared_ptr<Tpm> tpm_;
  uint32_t pcr_;
};

// TDX RTMR3 through the kernel's sysfs measurement file (Linux ≥ 6.16 exposes
// /sys/class/misc/tdx_guest/measurements/rtmr3:sha384; writing a 48-byte digest extends it).
// Where the kernel does not offer it, Create fails and the supervisor binds the log's digest.
class SysfsRtmrRegister : public MeasurementRegister {
 public:
  static constexpr char kDefaultPath[] = "/sys/class/misc/tdx_guest/measurements/rtmr3:sha384";
  static absl::StatusOr<std::unique_ptr<SysfsRtmrRegister>> Create(std::string path);
  std::string name() const override { return "RTMR3 (" + path_ + ")"; }
  absl::Status Extend(uint32_t index,
                      const std::map<uint16_t, std::vector<uint8_t>>& digests) override;

 private:
  explicit SysfsRtmrRegister(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace appliance::supervisor

#endif  // SUPERVISOR_TPM_H_
