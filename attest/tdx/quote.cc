#include "attest/tdx/quote.h"

#include "absl/strings/str_format.h"
#include "attest/byte_reader.h"
#include "attest/status.h"

namespace attest::tdx {
namespace {

template <size_t N>
absl::Status Read(ByteReader& r, std::array<uint8_t, N>& out) {
  ASSIGN_OR_RETURN(out, r.template ReadArray<N>());
  return absl::OkStatus();
}

absl::Status ParseBody(std::span<const uint8_t> bytes, bool tdx15, TdReport& b) {
  ByteReader r(bytes, "TD report body");
  b.tdx15 = tdx15;
  RETURN_IF_ERROR(Read(r, b.tee_tcb_svn));
  RETURN_IF_ERROR(Read(r, b.mrseam));
  RETURN_IF_ERROR(Read(r, b.mrsignerseam));
  ASSIGN_OR_RETURN(b.seam_attributes, r.ReadU64Le());
  ASSIGN_OR_RETURN(b.td_attributes, r.ReadU64Le());
  ASSIGN_OR_RETURN(b.xfam, r.ReadU64Le());
  RETURN_IF_ERROR(Read(r, b.mrtd));
  RETURN_IF_ERROR(Read(r, b.mrconfigid));
  RETURN_IF_ERROR(Read(r, b.mrowner));
  RETURN_IF_ERROR(Read(r, b.mrownerconfig));
  for (auto& rtmr : b.rtmr) RETURN_IF_ERROR(Read(r, rtmr));
  RETURN_IF_ERROR(Read(r, b.report_data));
  if (tdx15) {
    RETURN_IF_ERROR(Read(r, b.tee_tcb_svn2));
    RETURN_IF_ERROR(Read(r, b.mrservicetd));
  }
  return r.ExpectEnd();
}

absl::Status ParseQeReport(std::span<const uint8_t> bytes, QeReport& q) {
  ByteReader r(bytes, "QE report");
  q.raw.assign(bytes.begin(), bytes.end());
  RETURN_IF_ERROR(Read(r, q.cpusvn));
  ASSIGN_OR_RETURN(q.miscselect, r.ReadU32Le());
  RETURN_IF_ERROR(r.Skip(28));
  RETURN_IF_ERROR(Read(r, q.attributes));
  RETURN_IF_ERROR(Read(r, q.mrenclave));
  RETURN_IF_ERROR(r.Skip(32));
  RETURN_IF_ERROR(Read(r, q.mrsigner));
  RETURN_IF_ERROR(r.Skip(96));
  ASSIGN_OR_RETURN(q.isv_prod_id, r.ReadU16Le());
  ASSIGN_OR_RETURN(q.isv_svn, r.ReadU16Le());
  RETURN_IF_ERROR(r.Skip(60));
  RETURN_IF_ERROR(Read(r, q.report_data));
  return r.ExpectEnd();
}

// Certification data type 6: QE report, its signature, QE auth data, inner certification data.
absl::Status ParseQeCertificationData(std::span<const uint8_t> bytes, Quote& q) {
  ByteReader r(bytes, "QE report certification data");
  ASSIGN_OR_RETURN(auto report, r.ReadBytes(kQeReportSize));
  RETURN_IF_ERROR(ParseQeReport(report, q.qe_report));
  RETURN_IF_ERROR(Read(r, q.qe_report_signature));
  ASSIGN_OR_RETURN(uint16_t auth_size, r.ReadU16Le());
  ASSIGN_OR_RETURN(auto auth, r.ReadBytes(auth_size));
  q.qe_auth_data.assign(auth.begin(), auth.end());
  ASSIGN_OR_RETURN(uint16_t type, r.ReadU16Le());
  if (type != 5) {
    return absl::InvalidArgumentError(
        absl::StrFormat("TDX quote: inner certification data type %u (only 5, a PCK certificate "
                        "chain, is supported)",
                        type));
  }
  ASSIGN_OR_RETURN(uint32_t size, r.ReadU32Le());
  ASSIGN_OR_RETURN(auto pem, r.ReadBytes(size));
  q.pck_chain_pem.assign(pem.begin(), pem.end());
  // The chain is often NUL-terminated.
  while (!q.pck_chain_pem.empty() && q.pck_chain_pem.back() == '\0') q.pck_chain_pem.pop_back();
  return r.ExpectEnd();
}

}  // namespace

TdAttributes DecodeTdAttributes(uint64_t raw) {
  TdAttributes a;
  a.debug = raw & 1;
  a.sept_ve_disable = (raw >> 28) & 1;
  a.pks = (raw >> 30) & 1;
  a.kl = (raw >> 31) & 1;
  a.perfmon = (raw >> 63) & 1;
  return a;
}

absl::StatusOr<Quote> ParseQuote(std::span<const uint8_t> bytes) {
  if (bytes.size() > kMaxQuoteSize) {
    return absl::InvalidArgumentError(absl::StrFormat("TDX quote: %u bytes, over the %u-byte limit",
                                                      bytes.size(), kMaxQuoteSize));
  }
  ByteReader r(bytes, "TDX quote");
  Quote q;
  ASSIGN_OR_RETURN(q.version, r.ReadU16Le());
  if (q.version != 4 && q.version != 5) {
    return absl::InvalidArgumentError(absl::StrFormat("TDX quote: version %u (4 or 5)", q.version));
  }
  ASSIGN_OR_RETURN(q.attestation_key_type, r.ReadU16Le());
  if (q.attestation_key_type != kAttestationKeyEcdsaP256) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "TDX quote: attestation key type %u (2 = ECDSA P-256)", q.attestation_key_type));
  }
  ASSIGN_OR_RETURN(q.tee_type, r.ReadU32Le());
  if (q.tee_type != kTeeTypeTdx) {
    return absl::InvalidArgumentError(
        absl::StrFormat("TDX quote: TEE type 0x%x (0x81 = TDX)", q.tee_type));
  }
  RETURN_IF_ERROR(r.Skip(4));  // reserved
  RETURN_IF_ERROR(Read(r, q.qe_vendor_id));
  RETURN_IF_ERROR(Read(r, q.user_data));
  bool tdx15 = false;
  size_t body_size = kTdReport10Size;
  if (q.version == 5) {
    ASSIGN_OR_RETURN(uint16_t body_type, r.ReadU16Le());
    ASSIGN_OR_RETURN(uint32_t size, r.ReadU32Le());
    if (body_type == kBodyTdx10 && size == kTdReport10Size) {
      tdx15 = false;
    } else if (body_type == kBodyTdx15 && size == kTdReport15Size) {
      tdx15 = true;
    } else {
      return absl::InvalidArgumentError(absl::StrFormat(
          "TDX quote: v5 body type %u of %u bytes (2 = TDX 1.0, 584; 3 = TDX 1.5, 648)", body_type,
          size));
    }
    body_size = size;
  }
  ASSIGN_OR_RETURN(auto body, r.ReadBytes(body_size));
  RETURN_IF_ERROR(ParseBody(body, tdx15, q.body));
  q.signed_region.assign(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(r.offset()));
  ASSIGN_OR_RETURN(uint32_t sig_size, r.ReadU32Le());
  ASSIGN_OR_RETURN(auto sig_data, r.ReadBytes(sig_size));
  q.trailing_bytes = r.remaining();

  ByteReader s(sig_data, "TDX quote signature data");
  RETURN_IF_ERROR(Read(s, q.signature));
  RETURN_IF_ERROR(Read(s, q.attestation_key));
  ASSIGN_OR_RETURN(uint16_t cert_type, s.ReadU16Le());
  if (cert_type != 6) {
    return absl::InvalidArgumentError(
        absl::StrFormat("TDX quote: certification data type %u (only 6, QE report certification "
                        "data, is supported)",
                        cert_type));
  }
  ASSIGN_OR_RETURN(uint32_t cert_size, s.ReadU32Le());
  ASSIGN_OR_RETURN(auto cert, s.ReadBytes(cert_size));
  RETURN_IF_ERROR(ParseQeCertificationData(cert, q));
  RETURN_IF_ERROR(s.ExpectEnd());
  return q;
}

}  // namespace attest::tdx
