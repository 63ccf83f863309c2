#include "supervisor/tpm.h"

#include <fcntl.h>
#include <openssl/x509.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "attest/status.h"

namespace appliance::supervisor {
namespace {

constexpr uint32_t kQuotedPcrs = 24;
constexpr int kBusyRetries = 20;

std::string RcText(TSS2_RC rc) {
  return absl::StrCat(Tss2_RC_Decode(rc), " (0x", absl::Hex(rc), ")");
}

bool IsBusy(TSS2_RC rc) {
  const TSS2_RC base = rc & ~TSS2_RC_LAYER_MASK;
  return base == TPM2_RC_RETRY || base == TPM2_RC_YIELDED || base == TPM2_RC_TESTING;
}

absl::Status TpmError(absl::string_view what, TSS2_RC rc) {
  // TCTI-layer failures mean the TPM (or swtpm) is not reachable.
  if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TCTI_RC_LAYER) {
    return absl::UnavailableError(absl::StrCat("vTPM unreachable: ", what, ": ", RcText(rc)));
  }
  if (IsBusy(rc))
    return absl::UnavailableError(absl::StrCat("vTPM busy: ", what, ": ", RcText(rc)));
  return absl::InternalError(absl::StrCat("vTPM: ", what, ": ", RcText(rc)));
}

// Runs a TPM call, retrying while the TPM reports itself busy (bounded).
template <typename F>
TSS2_RC WithRetry(F&& call) {
  TSS2_RC rc = TSS2_RC_SUCCESS;
  for (int i = 0; i < kBusyRetries; ++i) {
    rc = call();
    if (!IsBusy(rc)) return rc;
    usleep(5000);
  }
  return rc;
}

template <typename T>
struct EsysFree {
  void operator()(T* p) const { Esys_Free(p); }
};
template <typename T>
using EsysPtr = std::unique_ptr<T, EsysFree<T>>;

constexpr TPMA_NV kCounterAttributes = (TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT) |
                                       TPMA_NV_AUTHWRITE | TPMA_NV_AUTHREAD | TPMA_NV_NO_DA;

// An AK must be a restricted signing key made in the TPM (it then signs only digests the TPM
// produced itself), never a decryption key.
bool RestrictedSigningKey(TPMA_OBJECT attributes) {
  const TPMA_OBJECT need = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT |
                           TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_SENSITIVEDATAORIGIN;
  return (attributes & need) == need && (attributes & TPMA_OBJECT_DECRYPT) == 0;
}

// The AK's public area as the evidence carries it (marshalled TPMT_PUBLIC).
absl::StatusOr<std::vector<uint8_t>> MarshalPublic(const TPMT_PUBLIC& pub) {
  std::vector<uint8_t> buf(sizeof(TPMT_PUBLIC));
  size_t off = 0;
  TSS2_RC rc = Tss2_MU_TPMT_PUBLIC_Marshal(&pub, buf.data(), buf.size(), &off);
  if (rc != TSS2_RC_SUCCESS) return TpmError("marshal AK public", rc);
  buf.resize(off);
  return buf;
}

bool SupportedBank(uint16_t alg) {
  return alg == TPM2_ALG_SHA1 || alg == TPM2_ALG_SHA256 || alg == TPM2_ALG_SHA384 ||
         alg == TPM2_ALG_SHA512;
}

// NV indices may be larger than what was written into them; the rest must be zero.
bool AllZero(std::span<const uint8_t> b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}

}  // namespace

absl::StatusOr<std::vector<uint8_t>> GceAkTemplate(std::span<const uint8_t> nv) {
  TPMT_PUBLIC pub{};
  size_t off = 0;
  TSS2_RC rc = Tss2_MU_TPMT_PUBLIC_Unmarshal(nv.data(), nv.size(), &off, &pub);
  if (rc != TSS2_RC_SUCCESS) {
    return absl::FailedPreconditionError(
        absl::StrCat("vTPM: the AK template in NV 0x", absl::Hex(kGceAkTemplateNvIndexRsa), " (",
                     nv.size(), " bytes) is not a TPMT_PUBLIC: ", RcText(rc)));
  }
  if (!AllZero(nv.subspan(off))) {
    return absl::FailedPreconditionError(absl::StrCat(
        "vTPM: the AK template in NV 0x", absl::Hex(kGceAkTemplateNvIndexRsa),
        " has non-zero bytes after its TPMT_PUBLIC (", off, " of ", nv.size(), " bytes)"));
  }
  if (!RestrictedSigningKey(pub.objectAttributes)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "vTPM: the AK template in NV 0x", absl::Hex(kGceAkTemplateNvIndexRsa),
        " is not a restricted signing key's (attributes 0x", absl::Hex(pub.objectAttributes), ")"));
  }
  return std::vector<uint8_t>(nv.begin(), nv.begin() + static_cast<std::ptrdiff_t>(off));
}

absl::StatusOr<std::vector<uint8_t>> GceAkCertificate(std::span<const uint8_t> nv) {
  const unsigned char* p = nv.data();
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(nv.size()));
  if (cert == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("vTPM: NV 0x", absl::Hex(kGceAkCertNvIndexRsa), " (", nv.size(),
                     " bytes) does not start with a DER X.509 certificate"));
  }
  X509_free(cert);
  const size_t len = static_cast<size_t>(p - nv.data());
  if (!AllZero(nv.subspan(len))) {
    return absl::FailedPreconditionError(
        absl::StrCat("vTPM: NV 0x", absl::Hex(kGceAkCertNvIndexRsa),
                     " has non-zero bytes after its certificate (", len, " of ", nv.size(), ")"));
  }
  return std::vector<uint8_t>(nv.begin(), nv.begin() + static_cast<std::ptrdiff_t>(len));
}

struct Tpm::Impl {
  std::mutex mu;
  TSS2_TCTI_CONTEXT* tcti = nullptr;
  ESYS_CONTEXT* esys = nullptr;
  ESYS_TR ak = ESYS_TR_NONE;
  bool ak_persistent = false;  // closed, never flushed

  ~Impl() {
    if (esys != nullptr && ak != ESYS_TR_NONE) {
      if (ak_persistent) {
        Esys_TR_Close(esys, &ak);
      } else {
        Esys_FlushContext(esys, ak);
      }
    }
    if (esys != nullptr) Esys_Finalize(&esys);
    if (tcti != nullptr) Tss2_TctiLdr_Finalize(&tcti);
  }
};

Tpm::Tpm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tpm::~Tpm() = default;

absl::StatusOr<std::unique_ptr<Tpm>> Tpm::OpenContext(const std::string& tcti) {
  auto impl = std::make_unique<Impl>();
  if (TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti.c_str(), &impl->tcti); rc != TSS2_RC_SUCCESS) {
    return absl::UnavailableError(
        absl::StrCat("vTPM unreachable: TCTI \"", tcti, "\": ", RcText(rc)));
  }
  if (TSS2_RC rc = Esys_Initialize(&impl->esys, impl->tcti, nullptr); rc != TSS2_RC_SUCCESS) {
    return TpmError("Esys_Initialize", rc);
  }
  std::unique_ptr<Tpm> tpm(new Tpm(std::move(impl)));
  RETURN_IF_ERROR(tpm->ReadBanks());
  return tpm;
}

absl::StatusOr<std::unique_ptr<Tpm>> Tpm::Open(const std::string& tcti,
                                               std::optional<uint32_t> persistent_ak) {
  ASSIGN_OR_RETURN(auto tpm, OpenContext(tcti));
  RETURN_IF_ERROR(tpm->InitAk(persistent_ak));
  return tpm;
}

absl::StatusOr<std::unique_ptr<Tpm>> Tpm::OpenWithoutAk(const std::string& tcti) {
  ASSIGN_OR_RETURN(auto tpm, OpenContext(tcti));
  tpm->ak_origin_ = "none (opened without an AK)";
  return tpm;
}

absl::Status Tpm::ReadBanks() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  // Allocated banks.
  TPMI_YES_NO more = TPM2_NO;
  TPMS_CAPABILITY_DATA* caps_raw = nullptr;
  TSS2_RC rc = WithRetry([&] {
    return Esys_GetCapability(impl_->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_PCRS,
                              0, 1, &more, &caps_raw);
  });
  if (rc != TSS2_RC_SUCCESS) return TpmError("GetCapability(PCRS)", rc);
  EsysPtr<TPMS_CAPABILITY_DATA> caps(caps_raw);
  const TPML_PCR_SELECTION& assigned = caps->data.assignedPCR;
  for (uint32_t i = 0; i < assigned.count && i < TPM2_NUM_PCR_BANKS; ++i) {
    const auto& sel = assigned.pcrSelections[i];
    bool any = false;
    for (uint8_t b = 0; b < sel.sizeofSelect && b < sizeof(sel.pcrSelect); ++b)
      any |= sel.pcrSelect[b] != 0;
    if (any && SupportedBank(sel.hash)) banks_.push_back(sel.hash);
  }
  if (banks_.empty()) return absl::FailedPreconditionError("vTPM: no allocated SHA PCR bank");
  return absl::OkStatus();
}

absl::Status Tpm::InitAk(std::optional<uint32_t> persistent_ak) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  if (persistent_ak) {
    ak_origin_ = absl::StrCat("persistent AK 0x", absl::Hex(*persistent_ak));
    return LoadPersistentAk(*persistent_ak);
  }
  // Google Cloud: the AK template Google certifies, and its certificate.
  std::vector<uint8_t> tmpl;
  lock.unlock();  // the NV calls below take the lock themselves
  ASSIGN_OR_RETURN(bool gce, NvDefined(kGceAkTemplateNvIndexRsa));
  if (gce) {
    ASSIGN_OR_RETURN(std::vector<uint8_t> nv, NvReadOwner(kGceAkTemplateNvIndexRsa, 1024));
    ASSIGN_OR_RETURN(tmpl, GceAkTemplate(nv));
    ASSIGN_OR_RETURN(bool has_cert, NvDefined(kGceAkCertNvIndexRsa));
    std::string cert_note = "no certificate";
    if (has_cert) {
      ASSIGN_OR_RETURN(std::vector<uint8_t> cert_nv, NvReadOwner(kGceAkCertNvIndexRsa, 8192));
      // What is not a certificate is not sent: the AK is still Google's, only not vouched for.
      auto cert = GceAkCertificate(cert_nv);
      if (cert.ok()) {
        ak_certificate_ = *std::move(cert);
        cert_note = absl::StrCat("certificate NV 0x", absl::Hex(kGceAkCertNvIndexRsa));
      } else {
        cert_note = absl::StrCat("no usable certificate: ", cert.status().message());
      }
    }
    ak_origin_ = absl::StrCat("Google Cloud AK (template NV 0x",
                              absl::Hex(kGceAkTemplateNvIndexRsa), ", ", cert_note, ")");
  } else {
    ak_origin_ = "own ECC P-256 AK (endorsement hierarchy)";
  }
  lock.lock();
  return CreateAk(tmpl);
}

absl::Status Tpm::LoadPersistentAk(uint32_t handle) {
  TSS2_RC rc = WithRetry([&] {
    return Esys_TR_FromTPMPublic(impl_->esys, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                 &impl_->ak);
  });
  if (rc != TSS2_RC_SUCCESS) {
    impl_->ak = ESYS_TR_NONE;
    return absl::FailedPreconditionError(
        absl::StrCat("vTPM: no persistent AK at 0x", absl::Hex(handle), ": ", RcText(rc)));
  }
  impl_->ak_persistent = true;
  TPM2B_PUBLIC* pub_raw = nullptr;
  TPM2B_NAME* name_raw = nullptr;
  TPM2B_NAME* qualified_raw = nullptr;
  rc = WithRetry([&] {
    return Esys_ReadPublic(impl_->esys, impl_->ak, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                           &pub_raw, &name_raw, &qualified_raw);
  });
  EsysPtr<TPM2B_PUBLIC> pub(pub_raw);
  Esys_Free(name_raw);
  Esys_Free(qualified_raw);
  if (rc != TSS2_RC_SUCCESS) return TpmError("ReadPublic(AK)", rc);
  if (!RestrictedSigningKey(pub->publicArea.objectAttributes)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "vTPM: the key at 0x", absl::Hex(handle), " is not a restricted signing key (attributes 0x",
        absl::Hex(pub->publicArea.objectAttributes), ")"));
  }
  ASSIGN_OR_RETURN(ak_public_, MarshalPublic(pub->publicArea));
  return absl::OkStatus();
}

absl::Status Tpm::CreateAk(const std::vector<uint8_t>& tmpl) {
  TSS2_RC rc = TSS2_RC_SUCCESS;
  // The AK: a restricted ECDSA P-256 / SHA-256 signing primary in the endorsement hierarchy.
  TPM2B_PUBLIC in_public{};
  TPMT_PUBLIC& pub = in_public.publicArea;
  if (!tmpl.empty()) {  // checked by GceAkTemplate
    size_t off = 0;
    rc = Tss2_MU_TPMT_PUBLIC_Unmarshal(tmpl.data(), tmpl.size(), &off, &pub);
    if (rc != TSS2_RC_SUCCESS) return TpmError("unmarshal AK template", rc);
  }
  if (tmpl.empty()) {
    pub.type = TPM2_ALG_ECC;
    pub.nameAlg = TPM2_ALG_SHA256;
    pub.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                           TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                           TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_NODA;
    pub.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    pub.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    pub.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    pub.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    pub.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  }
  TPM2B_SENSITIVE_CREATE sensitive{};
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION creation_pcr{};
  TPM2B_PUBLIC* out_public_raw = nullptr;
  TPM2B_CREATION_DATA* creation_data = nullptr;
  TPM2B_DIGEST* creation_hash = nullptr;
  TPMT_TK_CREATION* creation_ticket = nullptr;
  rc = WithRetry([&] {
    return Esys_CreatePrimary(impl_->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                              ESYS_TR_NONE, &sensitive, &in_public, &outside, &creation_pcr,
                              &impl_->ak, &out_public_raw, &creation_data, &creation_hash,
                              &creation_ticket);
  });
  EsysPtr<TPM2B_PUBLIC> out_public(out_public_raw);
  Esys_Free(creation_data);
  Esys_Free(creation_hash);
  Esys_Free(creation_ticket);
  if (rc != TSS2_RC_SUCCESS) {
    impl_->ak = ESYS_TR_NONE;
    return TpmError("CreatePrimary(AK)", rc);
  }
  ASSIGN_OR_RETURN(ak_public_, MarshalPublic(out_public->publicArea));
  return absl::OkStatus();
}

absl::Status Tpm::Extend(uint32_t pcr, const std::map<uint16_t, std::vector<uint8_t>>& digests) {
  if (pcr >= kQuotedPcrs) return absl::InvalidArgumentError(absl::StrCat("PCR ", pcr));
  TPML_DIGEST_VALUES values{};
  for (uint16_t bank : banks_) {
    auto d = digests.find(bank);
    if (d == digests.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "vTPM extend: no ", attest::tpm::HashAlgName(bank), " digest for an allocated bank"));
    }
    if (d->second.size() != attest::tpm::HashAlgSize(bank) || d->second.size() > sizeof(TPMU_HA)) {
      return absl::InvalidArgumentError("vTPM extend: digest size");
    }
    TPMT_HA& ha = values.digests[values.count++];
    ha.hashAlg = bank;
    std::memcpy(&ha.digest, d->second.data(), d->second.size());
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  TSS2_RC rc = WithRetry([&] {
    return Esys_PCR_Extend(impl_->esys, ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, &values);
  });
  if (rc != TSS2_RC_SUCCESS) return TpmError(absl::StrCat("PCR_Extend(", pcr, ")"), rc);
  return absl::OkStatus();
}

absl::StatusOr<TpmQuote> Tpm::Quote(std::span<const uint8_t> qualifying_data) {
  TPM2B_DATA qd{};
  if (qualifying_data.size() > sizeof(qd.buffer)) {
    return absl::InvalidArgumentError("vTPM quote: qualifying data too long");
  }
  qd.size = static_cast<uint16_t>(qualifying_data.size());
  std::memcpy(qd.buffer, qualifying_data.data(), qualifying_data.size());
  TPML_PCR_SELECTION all{};
  for (uint16_t bank : banks_) {
    auto& sel = all.pcrSelections[all.count++];
    sel.hash = bank;
    sel.sizeofSelect = 3;
    sel.pcrSelect[0] = sel.pcrSelect[1] = sel.pcrSelect[2] = 0xff;
  }
  TPMT_SIG_SCHEME scheme{};
  scheme.scheme = TPM2_ALG_NULL;  // the AK's own scheme

  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->ak == ESYS_TR_NONE) {
    return absl::FailedPreconditionError("vTPM: opened without an AK, cannot quote");
  }
  TPM2B_ATTEST* quoted_raw = nullptr;
  TPMT_SIGNATURE* sig_raw = nullptr;
  TSS2_RC rc = WithRetry([&] {
    return Esys_Quote(impl_->esys, impl_->ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &qd,
                      &scheme, &all, &quoted_raw, &sig_raw);
  });
  EsysPtr<TPM2B_ATTEST> quoted(quoted_raw);
  EsysPtr<TPMT_SIGNATURE> sig(sig_raw);
  if (rc != TSS2_RC_SUCCESS) return TpmError("Quote", rc);

  TpmQuote out;
  out.attest.assign(quoted->attestationData, quoted->attestationData + quoted->size);
  out.signature.resize(sizeof(TPMT_SIGNATURE));
  size_t off = 0;
  rc = Tss2_MU_TPMT_SIGNATURE_Marshal(sig.get(), out.signature.data(), out.signature.size(), &off);
  if (rc != TSS2_RC_SUCCESS) return TpmError("marshal signature", rc);
  out.signature.resize(off);

  // PCR values, 8 at a time (what TPM2_PCR_Read returns at most), under the same lock: no extend
  // can come between the quote and the read.
  for (uint16_t bank : banks_) {
    for (uint32_t group = 0; group < 3; ++group) {
      TPML_PCR_SELECTION in{};
      in.count = 1;
      in.pcrSelections[0].hash = bank;
      in.pcrSelections[0].sizeofSelect = 3;
      in.pcrSelections[0].pcrSelect[group] = 0xff;
      UINT32 counter = 0;
      TPML_PCR_SELECTION* out_sel_raw = nullptr;
      TPML_DIGEST* values_raw = nullptr;
      rc = WithRetry([&] {
        return Esys_PCR_Read(impl_->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &in, &counter,
                             &out_sel_raw, &values_raw);
      });
      EsysPtr<TPML_PCR_SELECTION> out_sel(out_sel_raw);
      EsysPtr<TPML_DIGEST> values(values_raw);
      if (rc != TSS2_RC_SUCCESS) return TpmError("PCR_Read", rc);
      if (values->count != 8) {
        return absl::InternalError(
            absl::StrCat("vTPM PCR_Read returned ", values->count, " values for 8 PCRs"));
      }
      for (uint32_t i = 0; i < 8; ++i) {
        const TPM2B_DIGEST& d = values->digests[i];
        out.pcrs[bank][group * 8 + i].assign(d.buffer, d.buffer + d.size);
      }
    }
  }
  return out;
}

absl::StatusOr<std::map<uint16_t, std::vector<uint8_t>>> Tpm::ReadPcr(uint32_t pcr) {
  if (pcr >= kQuotedPcrs) return absl::InvalidArgumentError(absl::StrCat("PCR ", pcr));
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::map<uint16_t, std::vector<uint8_t>> out;
  for (uint16_t bank : banks_) {
    TPML_PCR_SELECTION in{};
    in.count = 1;
    in.pcrSelections[0].hash = bank;
    in.pcrSelections[0].sizeofSelect = 3;
    in.pcrSelections[0].pcrSelect[pcr / 8] = static_cast<uint8_t>(1u << (pcr % 8));
    UINT32 counter = 0;
    TPML_PCR_SELECTION* out_sel_raw = nullptr;
    TPML_DIGEST* values_raw = nullptr;
    TSS2_RC rc = WithRetry([&] {
      return Esys_PCR_Read(impl_->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &in, &counter,
                           &out_sel_raw, &values_raw);
    });
    EsysPtr<TPML_PCR_SELECTION> out_sel(out_sel_raw);
    EsysPtr<TPML_DIGEST> values(values_raw);
    if (rc != TSS2_RC_SUCCESS) return TpmError("PCR_Read", rc);
    if (values->count != 1) return absl::InternalError("vTPM PCR_Read: no value");
    out[bank].assign(values->digests[0].buffer,
                     values->digests[0].buffer + values->digests[0].size);
  }
  return out;
}

absl::Status TpmRegister::Extend(uint32_t /*index*/,
                                 const std::map<uint16_t, std::vector<uint8_t>>& digests) {
  return tpm_->Extend(pcr_, digests);
}

absl::StatusOr<std::unique_ptr<SysfsRtmrRegister>> SysfsRtmrRegister::Create(std::string path) {
  if (access(path.c_str(), W_OK) != 0) {
    return absl::UnavailableError(absl::StrCat("RTMR extend not offered by this kernel (", path,
                                               ": ", std::strerror(errno), ")"));
  }
  return std::unique_ptr<SysfsRtmrRegister>(new SysfsRtmrRegister(std::move(path)));
}

absl::Status SysfsRtmrRegister::Extend(uint32_t /*index*/,
                                       const std::map<uint16_t, std::vector<uint8_t>>& digests) {
  auto d = digests.find(TPM2_ALG_SHA384);
  if (d == digests.end() || d->second.size() != 48) {
    return absl::InvalidArgumentError("RTMR3 extend needs a SHA-384 digest");
  }
  int fd = open(path_.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(path_, ": ", std::strerror(errno)));
  ssize_t n = write(fd, d->second.data(), d->second.size());
  int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(d->second.size())) {
    return absl::InternalError(
        absl::StrCat("RTMR3 extend via ", path_, ": ", n < 0 ? std::strerror(err) : "short write"));
  }
  return absl::OkStatus();
}

// ESYS handle of an NV index (closed on destruction).
namespace {

// Whether `index` is in the TPM's handle list. Asked this way, not with TPM2_NV_ReadPublic, so
// that a missing index is no error for tpm2-tss to log.
absl::StatusOr<bool> HandleListed(ESYS_CONTEXT* esys, uint32_t index) {
  TPMI_YES_NO more = TPM2_NO;
  TPMS_CAPABILITY_DATA* cap_raw = nullptr;
  TSS2_RC rc = WithRetry([&] {
    return Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
                              index, 1, &more, &cap_raw);
  });
  EsysPtr<TPMS_CAPABILITY_DATA> cap(cap_raw);
  if (rc != TSS2_RC_SUCCESS) return TpmError("GetCapability(handles)", rc);
  return cap->data.handles.count > 0 && cap->data.handles.handle[0] == index;
}

}  // namespace

struct NvHandle {
  ESYS_CONTEXT* esys;
  ESYS_TR tr = ESYS_TR_NONE;
  ~NvHandle() {
    if (tr != ESYS_TR_NONE) Esys_TR_Close(esys, &tr);
  }
  // Binds the handle to a defined index (reads its public area from the TPM).
  absl::Status Open(uint32_t index) {
    TSS2_RC rc = WithRetry([&] {
      return Esys_TR_FromTPMPublic(esys, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr);
    });
    if (rc != TSS2_RC_SUCCESS) {
      return TpmError(absl::StrCat("TR_FromTPMPublic(0x", absl::Hex(index), ")"), rc);
    }
    return absl::OkStatus();
  }
};

absl::StatusOr<std::optional<uint64_t>> Tpm::NvCounterRead(uint32_t index) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(bool listed, HandleListed(impl_->esys, index));
  if (!listed) return std::optional<uint64_t>();
  NvHandle nv{impl_->esys};
  TSS2_RC rc;
  RETURN_IF_ERROR(nv.Open(index));
  TPM2B_NV_PUBLIC* pub_raw = nullptr;
  TPM2B_NAME* name_raw = nullptr;
  rc = WithRetry([&] {
    return Esys_NV_ReadPublic(impl_->esys, nv.tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                              &pub_raw, &name_raw);
  });
  EsysPtr<TPM2B_NV_PUBLIC> pub(pub_raw);
  EsysPtr<TPM2B_NAME> name(name_raw);
  if (rc != TSS2_RC_SUCCESS) return TpmError("NV_ReadPublic", rc);
  const TPMA_NV attrs = pub->nvPublic.attributes;
  if ((attrs & ~TPMA_NV_WRITTEN) != kCounterAttributes || pub->nvPublic.dataSize != 8) {
    return absl::FailedPreconditionError(
        absl::StrCat("vTPM NV index 0x", absl::Hex(index), " has attributes 0x", absl::Hex(attrs),
                     ", size ", pub->nvPublic.dataSize, "; a release counter has 0x",
                     absl::Hex(kCounterAttributes), ", size 8 (someone else's index)"));
  }
  if ((attrs & TPMA_NV_WRITTEN) == 0) return std::optional<uint64_t>();
  TPM2B_MAX_NV_BUFFER* data_raw = nullptr;
  rc = WithRetry([&] {
    return Esys_NV_Read(impl_->esys, nv.tr, nv.tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, 8,
                        0, &data_raw);
  });
  EsysPtr<TPM2B_MAX_NV_BUFFER> data(data_raw);
  if (rc != TSS2_RC_SUCCESS) return TpmError("NV_Read", rc);
  if (data->size != 8) return absl::InternalError("vTPM NV_Read: not 8 bytes");
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | data->buffer[i];
  return std::optional<uint64_t>(v);
}

absl::Status Tpm::NvCounterDefine(uint32_t index) { return DefineNv(index, kCounterAttributes, 8); }

absl::Status Tpm::DefineNv(uint32_t index, uint32_t attributes, uint16_t size) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  TPM2B_NV_PUBLIC pub{};
  pub.nvPublic.nvIndex = index;
  pub.nvPublic.nameAlg = TPM2_ALG_SHA256;
  pub.nvPublic.attributes = attributes;
  pub.nvPublic.dataSize = size;
  TPM2B_AUTH auth{};
  NvHandle nv{impl_->esys};
  TSS2_RC rc = WithRetry([&] {
    return Esys_NV_DefineSpace(impl_->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                               ESYS_TR_NONE, &auth, &pub, &nv.tr);
  });
  if ((rc & ~TSS2_RC_LAYER_MASK) == TPM2_RC_NV_DEFINED) {
    return absl::AlreadyExistsError(absl::StrCat("vTPM NV index 0x", absl::Hex(index), " exists"));
  }
  if (rc != TSS2_RC_SUCCESS)
    return TpmError(absl::StrCat("NV_DefineSpace(0x", absl::Hex(index), ")"), rc);
  return absl::OkStatus();
}

absl::Status Tpm::NvCounterIncrement(uint32_t index) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  NvHandle nv{impl_->esys};
  RETURN_IF_ERROR(nv.Open(index));
  TSS2_RC rc = WithRetry([&] {
    return Esys_NV_Increment(impl_->esys, nv.tr, nv.tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                             ESYS_TR_NONE);
  });
  if (rc != TSS2_RC_SUCCESS) return TpmError("NV_Increment", rc);
  return absl::OkStatus();
}

absl::StatusOr<bool> Tpm::NvDefined(uint32_t index) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return HandleListed(impl_->esys, index);
}

absl::Status Tpm::NvDefineOwner(uint32_t index, uint16_t size) {
  return DefineNv(
      index,
      TPMA_NV_OWNERWRITE | TPMA_NV_OWNERREAD | TPMA_NV_AUTHWRITE | TPMA_NV_AUTHREAD | TPMA_NV_NO_DA,
      size);
}

absl::Status Tpm::NvWriteOwner(uint32_t index, std::span<const uint8_t> data) {
  constexpr size_t kChunk = 512;  // below every TPM's TPM2_PT_NV_BUFFER_MAX we know of
  std::lock_guard<std::mutex> lock(impl_->mu);
  NvHandle nv{impl_->esys};
  RETURN_IF_ERROR(nv.Open(index));
  for (size_t off = 0; off < data.size(); off += kChunk) {
    TPM2B_MAX_NV_BUFFER chunk{};
    chunk.size = static_cast<uint16_t>(std::min(kChunk, data.size() - off));
    std::memcpy(chunk.buffer, data.data() + off, chunk.size);
    TSS2_RC rc = WithRetry([&] {
      return Esys_NV_Write(impl_->esys, ESYS_TR_RH_OWNER, nv.tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, &chunk, static_cast<uint16_t>(off));
    });
    if (rc != TSS2_RC_SUCCESS)
      return TpmError(absl::StrCat("NV_Write(0x", absl::Hex(index), ")"), rc);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint8_t>> Tpm::NvReadOwner(uint32_t index, size_t max_size) {
  constexpr uint16_t kChunk = 512;
  std::lock_guard<std::mutex> lock(impl_->mu);
  NvHandle nv{impl_->esys};
  RETURN_IF_ERROR(nv.Open(index));
  TPM2B_NV_PUBLIC* pub_raw = nullptr;
  TPM2B_NAME* name_raw = nullptr;
  TSS2_RC rc = WithRetry([&] {
    return Esys_NV_ReadPublic(impl_->esys, nv.tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                              &pub_raw, &name_raw);
  });
  EsysPtr<TPM2B_NV_PUBLIC> pub(pub_raw);
  EsysPtr<TPM2B_NAME> name(name_raw);
  if (rc != TSS2_RC_SUCCESS) return TpmError("NV_ReadPublic", rc);
  const size_t size = pub->nvPublic.dataSize;
  if (size > max_size) {
    return absl::OutOfRangeError(absl::StrCat("vTPM NV index 0x", absl::Hex(index), " holds ", size,
                                              " bytes, more than ", max_size));
  }
  std::vector<uint8_t> out;
  out.reserve(size);
  while (out.size() < size) {
    const uint16_t n = static_cast<uint16_t>(std::min<size_t>(kChunk, size - out.size()));
    TPM2B_MAX_NV_BUFFER* data_raw = nullptr;
    rc = WithRetry([&] {
      return Esys_NV_Read(impl_->esys, ESYS_TR_RH_OWNER, nv.tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                          ESYS_TR_NONE, n, static_cast<uint16_t>(out.size()), &data_raw);
    });
    EsysPtr<TPM2B_MAX_NV_BUFFER> data(data_raw);
    if (rc != TSS2_RC_SUCCESS)
      return TpmError(absl::StrCat("NV_Read(0x", absl::Hex(index), ")"), rc);
    if (data->size != n) return absl::InternalError("vTPM NV_Read: short read");
    out.insert(out.end(), data->buffer, data->buffer + n);
  }
  return out;
}

}  // namespace appliance::supervisor
