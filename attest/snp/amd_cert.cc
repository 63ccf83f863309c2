#include "attest/snp/amd_cert.h"

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "attest/status.h"
#include "common/openssl_util.h"
#include "snp/amd_cert_internal.h"

namespace attest::snp {
namespace {

// The extension's value (the OCTET STRING content), or nullopt if absent.
absl::StatusOr<std::optional<std::span<const uint8_t>>> ExtensionValue(const X509* cert,
                                                                       const char* oid) {
  ossl::Asn1ObjectPtr obj(OBJ_txt2obj(oid, /*no_name=*/1));
  if (!obj) return absl::InternalError(absl::StrCat("bad OID constant ", oid));
  int idx = X509_get_ext_by_OBJ(cert, obj.get(), -1);
  if (idx < 0) return std::optional<std::span<const uint8_t>>();
  if (X509_get_ext_by_OBJ(cert, obj.get(), idx) >= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate: extension ", oid, " appears twice"));
  }
  const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(X509_get_ext(cert, idx));
  if (data == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate: extension ", oid, " has no value"));
  }
  return std::optional<std::span<const uint8_t>>(std::span<const uint8_t>(
      ASN1_STRING_get0_data(data), static_cast<size_t>(ASN1_STRING_length(data))));
}

absl::StatusOr<std::optional<uint8_t>> SplExtension(const X509* cert, const char* oid) {
  ASSIGN_OR_RETURN(auto value, ExtensionValue(cert, oid));
  if (!value) return std::optional<uint8_t>();
  const unsigned char* p = value->data();
  ossl::Asn1IntegerPtr integer(
      d2i_ASN1_INTEGER(nullptr, &p, static_cast<long>(value->size())));  // NOLINT
  if (!integer || p != value->data() + value->size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate: extension ", oid, " is not a DER INTEGER"));
  }
  int64_t v = 0;
  if (ASN1_INTEGER_get_int64(&v, integer.get()) != 1 || v < 0 || v > 255) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate: extension ", oid, " is not a security patch level 0-255"));
  }
  return std::optional<uint8_t>(static_cast<uint8_t>(v));
}

absl::StatusOr<std::optional<std::string>> Ia5Extension(const X509* cert, const char* oid) {
  ASSIGN_OR_RETURN(auto value, ExtensionValue(cert, oid));
  if (!value) return std::optional<std::string>();
  const unsigned char* p = value->data();
  ossl::Asn1Ia5Ptr str(
      d2i_ASN1_IA5STRING(nullptr, &p, static_cast<long>(value->size())));  // NOLINT
  if (!str || p != value->data() + value->size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate: extension ", oid, " is not a DER IA5String"));
  }
  return std::optional<std::string>(
      std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(str.get())),
                  static_cast<size_t>(ASN1_STRING_length(str.get()))));
}

}  // namespace

absl::StatusOr<AmdKeyExtensions> ParseAmdKeyExtensions(std::span<const uint8_t> cert_der) {
  if (cert_der.size() > kMaxVekCertificateSize) {
    return absl::InvalidArgumentError(
        absl::StrFormat("certificate: %u bytes, larger than the %u-byte limit for a VCEK/VLEK",
                        cert_der.size(), kMaxVekCertificateSize));
  }
  ASSIGN_OR_RETURN(ossl::X509Ptr cert,
                   ossl::ParseDerCertificate(cert_der, "VCEK/VLEK certificate"));
  return ExtractAmdKeyExtensions(cert.get());
}

absl::StatusOr<AmdKeyExtensions> ExtractAmdKeyExtensions(const X509* x509) {
  // OpenSSL's X509_get_ext_* take non-const pointers in places; nothing here modifies the cert.
  X509* cert = const_cast<X509*>(x509);
  AmdKeyExtensions ext;
  ext.subject_cn = ossl::CommonName(X509_get_subject_name(cert));
  ext.issuer_cn = ossl::CommonName(X509_get_issuer_name(cert));

  ASSIGN_OR_RETURN(auto version, ExtensionValue(cert, kOidStructVersion));
  if (version) {
    const unsigned char* p = version->data();
    ossl::Asn1IntegerPtr integer(
        d2i_ASN1_INTEGER(nullptr, &p, static_cast<long>(version->size())));  // NOLINT
    int64_t v = 0;
    if (!integer || p != version->data() + version->size() ||
        ASN1_INTEGER_get_int64(&v, integer.get()) != 1) {
      return absl::InvalidArgumentError("certificate: struct version extension is not an INTEGER");
    }
    ext.struct_version = v;
  }
  ASSIGN_OR_RETURN(ext.product_name, Ia5Extension(cert, kOidProductName));
  ASSIGN_OR_RETURN(ext.bl_spl, SplExtension(cert, kOidBlSpl));
  ASSIGN_OR_RETURN(ext.tee_spl, SplExtension(cert, kOidTeeSpl));
  ASSIGN_OR_RETURN(ext.snp_spl, SplExtension(cert, kOidSnpSpl));
  ASSIGN_OR_RETURN(ext.ucode_spl, SplExtension(cert, kOidUcodeSpl));
  ASSIGN_OR_RETURN(ext.fmc_spl, SplExtension(cert, kOidFmcSpl));
  ASSIGN_OR_RETURN(auto hwid, ExtensionValue(cert, kOidHwid));
  if (hwid) {
    // hwID is the raw chip id in the OCTET STRING, not a nested DER value.
    if (hwid->size() != 64 && hwid->size() != 8) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "certificate: hwID extension is %u bytes (64, or 8 on Turin)", hwid->size()));
    }
    ext.hwid = std::vector<uint8_t>(hwid->begin(), hwid->end());
  }
  ASSIGN_OR_RETURN(ext.csp_id, Ia5Extension(cert, kOidCspId));
  return ext;
}

}  // namespace attest::snp
