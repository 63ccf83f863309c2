#include "attest/tpm/ak.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <tss2/tss2_mu.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/tpm/hash_alg.h"
#include "common/openssl_util.h"

namespace attest::tpm {
namespace {

using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, ossl::Deleter<OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, ossl::Deleter<OSSL_PARAM_free>>;

std::vector<uint8_t> SpkiDer(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key, &der);
  if (n <= 0) return {};
  std::vector<uint8_t> out(der, der + n);
  OPENSSL_free(der);
  return out;
}

absl::StatusOr<ossl::EvpPkeyPtr> RsaKey(std::span<const uint8_t> n_be, uint32_t exponent) {
  ossl::BnPtr n(BN_bin2bn(n_be.data(), static_cast<int>(n_be.size()), nullptr));
  ossl::BnPtr e(BN_new());
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!n || !e || !bld || BN_set_word(e.get(), exponent) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
    return absl::ResourceExhaustedError("RSA key parameters");
  }
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  ossl::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* key = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("AK: invalid RSA public key (", ossl::LastError(), ")"));
  }
  return ossl::EvpPkeyPtr(key);
}

absl::StatusOr<ossl::EvpPkeyPtr> EcKey(const char* group, std::span<const uint8_t> x,
                                       std::span<const uint8_t> y, size_t field_bytes) {
  if (x.size() > field_bytes || y.size() > field_bytes) {
    return absl::InvalidArgumentError("AK: ECC point coordinate larger than the curve");
  }
  // Uncompressed point: 04 || X || Y, each left-padded to the field size.
  std::vector<uint8_t> point(1 + 2 * field_bytes, 0);
  point[0] = 0x04;
  std::copy(x.begin(), x.end(), point.begin() + 1 + (field_bytes - x.size()));
  std::copy(y.begin(), y.end(), point.begin() + 1 + field_bytes + (field_bytes - y.size()));
  auto key = ossl::EcPublicKey(group, point, /*full_check=*/true);
  if (!key.ok()) return absl::InvalidArgumentError(absl::StrCat("AK: ", key.status().message()));
  return key;
}

absl::StatusOr<AkPublicKey> FromEvp(ossl::EvpPkeyPtr owned) {
  EVP_PKEY* key = owned.get();
  AkPublicKey ak;
  int id = EVP_PKEY_get_base_id(key);
  if (id == EVP_PKEY_RSA) {
    ak.type = kAlgRsa;
  } else if (id == EVP_PKEY_EC) {
    ak.type = kAlgEcc;
  } else {
    return absl::InvalidArgumentError("AK: only RSA and ECC keys are supported");
  }
  ak.bits = EVP_PKEY_get_bits(key);
  if (ak.type == kAlgRsa && (ak.bits < 2048 || ak.bits > 4096)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("AK: RSA-%d is not accepted (2048-4096)", ak.bits));
  }
  ak.key = std::shared_ptr<evp_pkey_st>(owned.release(), EVP_PKEY_free);
  return ak;
}

}  // namespace

absl::StatusOr<std::vector<uint8_t>> AkSpkiDer(const AkPublicKey& ak) {
  if (!ak.key) return absl::InvalidArgumentError("AK: no key");
  std::vector<uint8_t> der = SpkiDer(ak.key.get());
  if (der.empty()) return absl::InternalError("AK: cannot encode the public key");
  return der;
}

std::string AkPublicKey::Describe() const {
  if (type == kAlgRsa) return absl::StrCat("RSA-", bits);
  return absl::StrCat("ECC P-", bits);
}

absl::StatusOr<AkPublicKey> ParseAkTpmtPublic(std::span<const uint8_t> bytes) {
  if (bytes.size() > kMaxAkInputSize)
    return absl::InvalidArgumentError("AK: TPMT_PUBLIC too large");
  TPMT_PUBLIC pub{};
  size_t offset = 0;
  TSS2_RC rc = Tss2_MU_TPMT_PUBLIC_Unmarshal(bytes.data(), bytes.size(), &offset, &pub);
  if (rc != TSS2_RC_SUCCESS) {
    return absl::InvalidArgumentError(
        absl::StrFormat("AK: not a TPMT_PUBLIC (unmarshal error 0x%x)", rc));
  }
  if (offset != bytes.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "AK: TPMT_PUBLIC ends at byte %u but the input has %u", offset, bytes.size()));
  }
  ossl::EvpPkeyPtr key;
  uint16_t scheme = TPM2_ALG_NULL, scheme_hash = TPM2_ALG_NULL;
  if (pub.type == TPM2_ALG_RSA) {
    const auto& rsa = pub.unique.rsa;
    uint32_t exponent =
        pub.parameters.rsaDetail.exponent == 0 ? 65537 : pub.parameters.rsaDetail.exponent;
    ASSIGN_OR_RETURN(key, RsaKey(std::span<const uint8_t>(rsa.buffer, rsa.size), exponent));
    scheme = pub.parameters.rsaDetail.scheme.scheme;
    scheme_hash = scheme == TPM2_ALG_NULL ? TPM2_ALG_NULL
                                          : pub.parameters.rsaDetail.scheme.details.anySig.hashAlg;
  } else if (pub.type == TPM2_ALG_ECC) {
    const auto& ecc = pub.unique.ecc;
    const char* group = nullptr;
    size_t field = 0;
    switch (pub.parameters.eccDetail.curveID) {
      case TPM2_ECC_NIST_P256:
        group = "P-256";
        field = 32;
        break;
      case TPM2_ECC_NIST_P384:
        group = "P-384";
        field = 48;
        break;
      case TPM2_ECC_NIST_P521:
        group = "P-521";
        field = 66;
        break;
      default:
        return absl::InvalidArgumentError(absl::StrFormat("AK: ECC curve 0x%04x is not supported",
                                                          pub.parameters.eccDetail.curveID));
    }
    ASSIGN_OR_RETURN(key, EcKey(group, std::span<const uint8_t>(ecc.x.buffer, ecc.x.size),
                                std::span<const uint8_t>(ecc.y.buffer, ecc.y.size), field));
    scheme = pub.parameters.eccDetail.scheme.scheme;
    scheme_hash = scheme == TPM2_ALG_NULL ? TPM2_ALG_NULL
                                          : pub.parameters.eccDetail.scheme.details.anySig.hashAlg;
  } else {
    return absl::InvalidArgumentError(
        absl::StrFormat("AK: key type 0x%04x is not RSA or ECC", pub.type));
  }
  ASSIGN_OR_RETURN(AkPublicKey ak, FromEvp(std::move(key)));
  ak.tpmt_public = std::vector<uint8_t>(bytes.begin(), bytes.end());
  ak.scheme = scheme;
  ak.scheme_hash = scheme_hash;
  ak.object_attributes = pub.objectAttributes;
  auto digest = Hash(pub.nameAlg, bytes);
  if (digest.ok()) {
    std::vector<uint8_t> name = {static_cast<uint8_t>(pub.nameAlg >> 8),
                                 static_cast<uint8_t>(pub.nameAlg)};
    name.insert(name.end(), digest->begin(), digest->end());
    ak.name = std::move(name);
  }
  return ak;
}

absl::StatusOr<AkPublicKey> ParseAkPem(std::span<const uint8_t> bytes) {
  if (bytes.size() > kMaxAkInputSize) return absl::InvalidArgumentError("AK: PEM too large");
  ossl::BioPtr bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
  ossl::EvpPkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return absl::InvalidArgumentError(
        absl::StrCat("AK: not a PEM public key (", ossl::LastError(), ")"));
  }
  return FromEvp(std::move(key));
}

namespace {

// A string member, or "" when absent or not a string (nlohmann's value() throws on a type
// mismatch).
std::string StringMember(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

absl::StatusOr<AkPublicKey> ParseAkJwk(absl::string_view json, absl::string_view kid) {
  if (json.size() > kMaxAkInputSize) return absl::InvalidArgumentError("AK: JWK too large");
  nlohmann::json j = nlohmann::json::parse(json.begin(), json.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return absl::InvalidArgumentError("AK: JWK is not a JSON object");
  if (j.contains("keys")) {
    if (!j["keys"].is_array())
      return absl::InvalidArgumentError("AK: JWK set 'keys' is not a list");
    nlohmann::json found;
    for (const auto& k : j["keys"]) {
      if (k.is_object() && StringMember(k, "kid") == std::string(kid)) found = k;
    }
    if (found.is_null()) {
      return absl::InvalidArgumentError(
          absl::StrCat("AK: no key with kid '", kid, "' in the JWK set"));
    }
    j = found;
  }
  if (StringMember(j, "kty") != "RSA" || StringMember(j, "n").empty() ||
      StringMember(j, "e").empty()) {
    return absl::InvalidArgumentError("AK: JWK is not an RSA key with 'n' and 'e'");
  }
  ASSIGN_OR_RETURN(auto n, Base64UrlDecode(j["n"].get<std::string>()));
  ASSIGN_OR_RETURN(auto e, Base64UrlDecode(j["e"].get<std::string>()));
  if (e.empty() || e.size() > 4) return absl::InvalidArgumentError("AK: JWK exponent out of range");
  uint32_t exponent = 0;
  for (uint8_t b : e) exponent = exponent << 8 | b;
  ASSIGN_OR_RETURN(auto key, RsaKey(n, exponent));
  return FromEvp(std::move(key));
}

absl::StatusOr<AkPublicKey> ParseAkAuto(std::span<const uint8_t> bytes, absl::string_view kid) {
  if (LooksLikePem(bytes)) return ParseAkPem(bytes);
  size_t i = 0;
  while (i < bytes.size() &&
         (bytes[i] == ' ' || bytes[i] == '\n' || bytes[i] == '\r' || bytes[i] == '\t'))
    ++i;
  if (i < bytes.size() && bytes[i] == '{') {
    return ParseAkJwk(absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                      kid);
  }
  return ParseAkTpmtPublic(bytes);
}

absl::Status CheckAkAttributes(const AkPublicKey& ak, CheckLog& log) {
  if (!ak.tpmt_public) {
    log.Pass("tpm.ak.attributes", "not known (the AK is not given as a TPMT_PUBLIC)");
    return absl::OkStatus();
  }
  constexpr uint32_t kRestricted = 1u << 16, kDecrypt = 1u << 17, kSign = 1u << 18;
  bool ok = (ak.object_attributes & kRestricted) && (ak.object_attributes & kSign) &&
            !(ak.object_attributes & kDecrypt);
  return log.Expect(
      ok, "tpm.ak.attributes",
      absl::StrFormat("objectAttributes 0x%08x: %s", ak.object_attributes,
                      ok ? "a restricted signing key"
                         : "not a restricted signing key (restricted and sign set, decrypt clear): "
                           "such a key can sign data the TPM did not produce"));
}

absl::Status CheckAkName(const AkPublicKey& ak, std::span<const uint8_t> expected, CheckLog& log) {
  if (!ak.name)
    return log.Fail("tpm.ak.name", "the AK has no TPM Name (not given as a TPMT_PUBLIC)");
  bool same = std::equal(ak.name->begin(), ak.name->end(), expected.begin(), expected.end());
  return log.Expect(
      same, "tpm.ak.name",
      same ? absl::StrCat("AK Name ", HexEncode(*ak.name))
           : absl::StrCat("AK Name ", HexEncode(*ak.name), " but expected ", HexEncode(expected)));
}

absl::Status VerifyAkCertificate(const AkPublicKey& ak, std::span<const uint8_t> cert_bytes,
                                 const std::vector<std::vector<uint8_t>>& ca_certs, absl::Time now,
                                 CheckLog& log) {
  ASSIGN_OR_RETURN(auto certs, ParseCertificates(cert_bytes, "AK certificate"));
  ASSIGN_OR_RETURN(auto cert, ossl::ParseDerCertificate(certs.front(), "AK certificate"));
  std::vector<ossl::X509Ptr> owned;
  std::vector<X509*> roots, intermediates;
  for (const auto& der : ca_certs) {
    ASSIGN_OR_RETURN(auto ca, ossl::ParseDerCertificate(der, "AK CA certificate"));
    (X509_check_issued(ca.get(), ca.get()) == X509_V_OK ? roots : intermediates)
        .push_back(ca.get());
    owned.push_back(std::move(ca));
  }
  if (roots.empty())
    return absl::InvalidArgumentError("AK certificate: no self-signed root among --ak-ca");
  ASSIGN_OR_RETURN(std::string chain_error,
                   ossl::ChainError(cert.get(), roots, intermediates, {}, now));
  if (!chain_error.empty()) {
    return log.Fail("tpm.ak.certificate",
                    absl::StrCat("AK certificate does not chain to the given CA: ", chain_error));
  }
  ossl::EvpPkeyPtr cert_key(X509_get_pubkey(cert.get()));
  bool same = cert_key && ak.key && EVP_PKEY_eq(cert_key.get(), ak.key.get()) == 1;
  return log.Expect(same, "tpm.ak.certificate",
                    same ? absl::StrCat("AK certificate (issuer ",
                                        ossl::NameToString(X509_get_issuer_name(cert.get())),
                                        ") chains to the given CA and certifies the AK")
                         : "the AK certificate certifies a different public key than the AK");
}

}  // namespace attest::tpm
