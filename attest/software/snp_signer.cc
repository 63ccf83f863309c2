#include "snp_signer.h"

#include <openssl/asn1.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "attest/snp/amd_cert.h"
#include "attest/status.h"
#include "common/openssl_util.h"

namespace attest::testing {
namespace {

using snp::Product;
using snp::SigningKey;

constexpr char kOrganization[] = "SoftwareSnpSigner TEST (not AMD)";

absl::Status Err(absl::string_view what) {
  return absl::InternalError(absl::StrCat("software signer: ", what, ": ", ossl::LastError()));
}

absl::StatusOr<ossl::EvpPkeyPtr> GenerateRsa(int bits) {
  ossl::EvpPkeyPtr key(EVP_RSA_gen(static_cast<unsigned>(bits)));
  if (!key) return Err("RSA keygen");
  return key;
}

absl::StatusOr<ossl::EvpPkeyPtr> GenerateP384() {
  ossl::EvpPkeyPtr key(EVP_EC_gen("secp384r1"));
  if (!key) return Err("EC keygen");
  return key;
}

// AMD's distinguished names: OU=Engineering, C=US, L=Santa Clara, ST=CA, O=..., CN=...
X509_NAME* MakeName(const std::string& cn) {
  X509_NAME* name = X509_NAME_new();
  auto add = [name](const char* field, const std::string& value) {
    X509_NAME_add_entry_by_txt(name, field, MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0);
  };
  add("OU", "Engineering");
  add("C", "US");
  add("L", "Santa Clara");
  add("ST", "CA");
  add("O", kOrganization);
  add("CN", cn);
  return name;
}

absl::Status AddV3(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) return Err("X509V3_EXT_conf_nid");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return absl::OkStatus();
}

// An AMD extension whose value is the given bytes (already DER, or raw for hwID).
absl::Status AddRaw(X509* cert, const char* oid, const std::vector<uint8_t>& value) {
  ossl::Asn1ObjectPtr obj(OBJ_txt2obj(oid, 1));
  ASN1_OCTET_STRING* data = ASN1_OCTET_STRING_new();
  ASN1_OCTET_STRING_set(data, value.data(), static_cast<int>(value.size()));
  X509_EXTENSION* ext = X509_EXTENSION_create_by_OBJ(nullptr, obj.get(), 0, data);
  ASN1_OCTET_STRING_free(data);
  if (ext == nullptr) return Err("X509_EXTENSION_create_by_OBJ");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return absl::OkStatus();
}

std::vector<uint8_t> DerInteger(int64_t v) {
  ossl::Asn1IntegerPtr i(ASN1_INTEGER_new());
  ASN1_INTEGER_set_int64(i.get(), v);
  unsigned char* der = nullptr;
  int n = i2d_ASN1_INTEGER(i.get(), &der);
  std::vector<uint8_t> out(der, der + n);
  OPENSSL_free(der);
  return out;
}

std::vector<uint8_t> DerIa5(const std::string& s) {
  ossl::Asn1Ia5Ptr str(ASN1_IA5STRING_new());
  ASN1_STRING_set(str.get(), s.data(), static_cast<int>(s.size()));
  unsigned char* der = nullptr;
  int n = i2d_ASN1_IA5STRING(str.get(), &der);
  std::vector<uint8_t> out(der, der + n);
  OPENSSL_free(der);
  return out;
}

// RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48: AMD's signature profile.
absl::Status InitPssSign(EVP_MD_CTX* md, EVP_PKEY* key) {
  EVP_PKEY_CTX* pctx = nullptr;
  if (EVP_DigestSignInit(md, &pctx, EVP_sha384(), nullptr, key) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()) != 1) {
    return Err("RSA-PSS sign init");
  }
  return absl::OkStatus();
}

absl::Status SignPss(X509* cert, EVP_PKEY* key) {
  ossl::EvpMdCtxPtr md(EVP_MD_CTX_new());
  RETURN_IF_ERROR(InitPssSign(md.get(), key));
  if (X509_sign_ctx(cert, md.get()) <= 0) return Err("RSA-PSS certificate signature");
  return absl::OkStatus();
}

struct CertSpec {
  uint64_t serial = 0;
  std::string subject_cn;
  absl::Time not_before, not_after;
  EVP_PKEY* subject_key = nullptr;
  X509* issuer = nullptr;  // nullptr: self-signed
  EVP_PKEY* issuer_key = nullptr;
};

absl::StatusOr<ossl::X509Ptr> NewCert(const CertSpec& spec) {
  ossl::X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), spec.serial);
  X509_NAME* subject = MakeName(spec.subject_cn);
  X509_set_subject_name(cert.get(), subject);
  X509_set_issuer_name(cert.get(), spec.issuer ? X509_get_subject_name(spec.issuer) : subject);
  X509_NAME_free(subject);
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), absl::ToTimeT(spec.not_before));
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), absl::ToTimeT(spec.not_after));
  if (X509_set_pubkey(cert.get(), spec.subject_key) != 1) return Err("X509_set_pubkey");
  return cert;
}

std::string DefaultProductName(Product p) {
  switch (p) {
    case Product::kMilan:
      return "Milan-B0";
    case Product::kGenoa:
      return "Genoa";
    case Product::kTurin:
      return "Turin";
    case Product::kUnknown:
      break;
  }
  return "Unknown";
}

void PutLe(std::vector<uint8_t>& b, size_t off, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) b[off + i] = static_cast<uint8_t>(v >> (8 * i));
}

template <size_t N>
void PutBytes(std::vector<uint8_t>& b, size_t off, const std::array<uint8_t, N>& a) {
  std::memcpy(b.data() + off, a.data(), N);
}

}  // namespace

struct SoftwareSnpSigner::Keys {
  ossl::EvpPkeyPtr ark, ask, asvk;
  ossl::X509Ptr ark_cert, ask_cert, asvk_cert;
};

SoftwareSnpSigner::SoftwareSnpSigner(Product product, std::unique_ptr<Keys> keys)
    : product_(product), keys_(std::move(keys)) {
  ark_der_ = ossl::ToDer(keys_->ark_cert.get());
  ask_der_ = ossl::ToDer(keys_->ask_cert.get());
  asvk_der_ = ossl::ToDer(keys_->asvk_cert.get());
}

SoftwareSnpSigner::~SoftwareSnpSigner() = default;

absl::StatusOr<std::unique_ptr<SoftwareSnpSigner>> SoftwareSnpSigner::Create(Product product,
                                                                             int rsa_bits) {
  const std::string name(snp::ProductName(product));
  const std::string crl_dp =
      absl::StrCat("URI:https://kds.software-snp-signer.test/vcek/v1/", name, "/crl");
  auto keys = std::make_unique<Keys>();
  ASSIGN_OR_RETURN(keys->ark, GenerateRsa(rsa_bits));
  ASSIGN_OR_RETURN(keys->ask, GenerateRsa(rsa_bits));
  ASSIGN_OR_RETURN(keys->asvk, GenerateRsa(rsa_bits));
  const absl::Time from = absl::FromUnixSeconds(1577836800);   // 2020-01-01
  const absl::Time until = absl::FromUnixSeconds(2840140800);  // 2060-01-01

  ASSIGN_OR_RETURN(keys->ark_cert, NewCert({0x10000, "ARK-" + name, from, until, keys->ark.get(),
                                            nullptr, keys->ark.get()}));
  X509* ark = keys->ark_cert.get();
  RETURN_IF_ERROR(AddV3(ark, ark, NID_key_usage, "critical,keyCertSign,cRLSign"));
  RETURN_IF_ERROR(AddV3(ark, ark, NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(AddV3(ark, ark, NID_basic_constraints, "critical,CA:TRUE"));
  RETURN_IF_ERROR(AddV3(ark, ark, NID_crl_distribution_points, crl_dp.c_str()));
  RETURN_IF_ERROR(SignPss(ark, keys->ark.get()));

  auto intermediate = [&](uint64_t serial, const std::string& cn,
                          EVP_PKEY* key) -> absl::StatusOr<ossl::X509Ptr> {
    ASSIGN_OR_RETURN(auto cert, NewCert({serial, cn, from, until, key, ark, keys->ark.get()}));
    RETURN_IF_ERROR(AddV3(cert.get(), ark, NID_subject_key_identifier, "hash"));
    RETURN_IF_ERROR(AddV3(cert.get(), ark, NID_authority_key_identifier, "keyid:always"));
    RETURN_IF_ERROR(AddV3(cert.get(), ark, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
    RETURN_IF_ERROR(AddV3(cert.get(), ark, NID_key_usage, "critical,keyCertSign"));
    RETURN_IF_ERROR(AddV3(cert.get(), ark, NID_crl_distribution_points, crl_dp.c_str()));
    RETURN_IF_ERROR(SignPss(cert.get(), keys->ark.get()));
    return cert;
  };
  ASSIGN_OR_RETURN(keys->ask_cert, intermediate(kAskSerial, "SEV-" + name, keys->ask.get()));
  ASSIGN_OR_RETURN(keys->asvk_cert,
                   intermediate(kAsvkSerial, "SEV-VLEK-" + name, keys->asvk.get()));
  return std::unique_ptr<SoftwareSnpSigner>(new SoftwareSnpSigner(product, std::move(keys)));
}

std::vector<std::vector<uint8_t>> SoftwareSnpSigner::Chain(SigningKey kind) const {
  return {kind == SigningKey::kVlek ? asvk_der_ : ask_der_, ark_der_};
}

absl::StatusOr<SoftwareVek> SoftwareSnpSigner::IssueVek(const VekOptions& o) const {
  ASSIGN_OR_RETURN(ossl::EvpPkeyPtr key, GenerateP384());
  bool vlek = o.kind == SigningKey::kVlek;
  X509* issuer = vlek ? keys_->asvk_cert.get() : keys_->ask_cert.get();
  EVP_PKEY* issuer_key = vlek ? keys_->asvk.get() : keys_->ask.get();
  ASSIGN_OR_RETURN(auto cert, NewCert({0, vlek ? snp::kVlekCommonName : snp::kVcekCommonName,
                                       o.not_before, o.not_after, key.get(), issuer, issuer_key}));
  X509* c = cert.get();
  // Extension order as AMD KDS issues them.
  RETURN_IF_ERROR(AddRaw(c, snp::kOidStructVersion, DerInteger(0)));
  RETURN_IF_ERROR(AddRaw(c, snp::kOidProductName,
                         DerIa5(o.product_name.value_or(DefaultProductName(product_)))));
  RETURN_IF_ERROR(AddRaw(c, snp::kOidBlSpl, DerInteger(o.tcb.bl)));
  RETURN_IF_ERROR(AddRaw(c, snp::kOidTeeSpl, DerInteger(o.tcb.tee)));
  for (const char* reserved : {"1.3.6.1.4.1.3704.1.3.4", "1.3.6.1.4.1.3704.1.3.5",
                               "1.3.6.1.4.1.3704.1.3.6", "1.3.6.1.4.1.3704.1.3.7"}) {
    RETURN_IF_ERROR(AddRaw(c, reserved, DerInteger(0)));
  }
  RETURN_IF_ERROR(AddRaw(c, snp::kOidSnpSpl, DerInteger(o.tcb.snp)));
  RETURN_IF_ERROR(AddRaw(c, snp::kOidUcodeSpl, DerInteger(o.tcb.ucode)));
  if (product_ == Product::kTurin) {
    RETURN_IF_ERROR(AddRaw(c, snp::kOidFmcSpl, DerInteger(o.tcb.fmc.value_or(0))));
  }
  if (vlek) {
    RETURN_IF_ERROR(AddRaw(c, snp::kOidCspId, DerIa5(o.csp_id)));
  } else if (!o.omit_hwid) {
    size_t n = product_ == Product::kTurin ? 8 : 64;
    RETURN_IF_ERROR(
        AddRaw(c, snp::kOidHwid, std::vector<uint8_t>(o.chip_id.begin(), o.chip_id.begin() + n)));
  }
  RETURN_IF_ERROR(SignPss(c, issuer_key));
  SoftwareVek out;
  out.kind = o.kind;
  out.cert_der = ossl::ToDer(c);
  out.key = std::shared_ptr<EVP_PKEY>(key.release(), EVP_PKEY_free);
  return out;
}

std::vector<uint8_t> EncodeReport(const snp::Report& r) {
  std::vector<uint8_t> b(snp::kReportSize, 0);
  PutLe(b, 0x000, r.version, 4);
  PutLe(b, 0x004, r.guest_svn, 4);
  PutLe(b, 0x008, r.policy.raw, 8);
  PutBytes(b, 0x010, r.family_id);
  PutBytes(b, 0x020, r.image_id);
  PutLe(b, 0x030, r.vmpl, 4);
  PutLe(b, 0x034, r.signature_algo, 4);
  PutLe(b, 0x038, r.current_tcb, 8);
  PutLe(b, 0x040, r.platform_info.raw, 8);
  uint32_t key_info = (r.author_key_en ? 1u : 0u) | (r.mask_chip_key ? 2u : 0u) |
                      (static_cast<uint32_t>(r.signing_key) << 2);
  PutLe(b, 0x048, key_info, 4);
  PutBytes(b, 0x050, r.report_data);
  PutBytes(b, 0x090, r.measurement);
  PutBytes(b, 0x0C0, r.host_data);
  PutBytes(b, 0x0E0, r.id_key_digest);
  PutBytes(b, 0x110, r.author_key_digest);
  PutBytes(b, 0x140, r.report_id);
  PutBytes(b, 0x160, r.report_id_ma);
  PutLe(b, 0x180, r.reported_tcb, 8);
  if (r.version >= 3) {
    b[0x188] = r.cpuid_family.value_or(0);
    b[0x189] = r.cpuid_model.value_or(0);
    b[0x18A] = r.cpuid_stepping.value_or(0);
  }
  PutBytes(b, 0x1A0, r.chip_id);
  PutLe(b, 0x1E0, r.committed_tcb, 8);
  b[0x1E8] = r.current_fw.build;
  b[0x1E9] = r.current_fw.minor;
  b[0x1EA] = r.current_fw.major;
  b[0x1EC] = r.committed_fw.build;
  b[0x1ED] = r.committed_fw.minor;
  b[0x1EE] = r.committed_fw.major;
  PutLe(b, 0x1F0, r.launch_tcb, 8);
  if (r.version >= 5) {
    PutLe(b, 0x1F8, r.launch_mit_vector.value_or(0), 8);
    PutLe(b, 0x200, r.current_mit_vector.value_or(0), 8);
  }
  return b;
}

snp::Report MakeReportFields(Product product, uint32_t version, const snp::TcbVersion& tcb,
                             const std::array<uint8_t, 64>& chip_id) {
  snp::Report r;
  r.version = version;
  r.policy = snp::DecodeGuestPolicy(0x30000);
  r.signature_algo = snp::kSignatureAlgoEcdsaP384Sha384;
  r.platform_info.raw = 0x1;
  r.platform_info.smt_enabled = true;
  uint64_t raw = snp::EncodeTcb(tcb, product);
  r.current_tcb = r.reported_tcb = r.committed_tcb = r.launch_tcb = raw;
  r.chip_id = chip_id;
  r.report_id_ma.fill(0xff);
  r.current_fw = r.committed_fw = {1, 55, 40};
  if (version >= 3) {
    switch (product) {
      case Product::kMilan:
        r.cpuid_family = 0x19;
        r.cpuid_model = 0x01;
        break;
      case Product::kGenoa:
        r.cpuid_family = 0x19;
        r.cpuid_model = 0x11;
        break;
      case Product::kTurin:
        r.cpuid_family = 0x1A;
        r.cpuid_model = 0x02;
        break;
      case Product::kUnknown:
        break;
    }
    r.cpuid_stepping = 0x01;
  }
  if (version >= 5) {
    r.launch_mit_vector = 0x3;
    r.current_mit_vector = 0x7;
  }
  return r;
}

absl::StatusOr<std::vector<uint8_t>> SoftwareSnpSigner::SignReport(const snp::Report& fields,
                                                                   const SoftwareVek& vek) const {
  std::vector<uint8_t> b = EncodeReport(fields);
  ossl::EvpMdCtxPtr md(EVP_MD_CTX_new());
  size_t sig_len = 0;
  if (EVP_DigestSignInit(md.get(), nullptr, EVP_sha384(), nullptr, vek.key.get()) != 1 ||
      EVP_DigestSign(md.get(), nullptr, &sig_len, b.data(), snp::kSignedRegionSize) != 1) {
    return Err("ECDSA sign");
  }
  std::vector<uint8_t> der(sig_len);
  if (EVP_DigestSign(md.get(), der.data(), &sig_len, b.data(), snp::kSignedRegionSize) != 1) {
    return Err("ECDSA sign");
  }
  const unsigned char* p = der.data();
  ossl::EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig_len)));  // NOLINT
  if (!sig) return Err("d2i_ECDSA_SIG");
  // R at 0x2A0 and S at 0x2E8, little-endian, zero-extended to 72 bytes.
  BN_bn2lebinpad(ECDSA_SIG_get0_r(sig.get()), b.data() + 0x2A0, snp::kSignatureComponentSize);
  BN_bn2lebinpad(ECDSA_SIG_get0_s(sig.get()), b.data() + 0x2E8, snp::kSignatureComponentSize);
  return b;
}

absl::StatusOr<SoftwareSnpSigner::Evidence> SoftwareSnpSigner::MakeEvidence(
    uint32_t version, const VekOptions& vek_options,
    const std::function<void(snp::Report&)>& edit) const {
  Evidence out;
  ASSIGN_OR_RETURN(out.vek, IssueVek(vek_options));
  snp::Report fields = MakeReportFields(product_, version, vek_options.tcb, vek_options.chip_id);
  fields.signing_key = vek_options.kind;
  if (vek_options.kind == SigningKey::kVlek) fields.chip_id.fill(0);
  if (edit) edit(fields);
  ASSIGN_OR_RETURN(out.report, SignReport(fields, out.vek));
  out.chain = Chain(vek_options.kind);
  return out;
}

absl::StatusOr<std::vector<uint8_t>> SoftwareSnpSigner::MakeCrl(
    const std::vector<uint64_t>& revoked_serials, absl::Time this_update,
    absl::Time next_update) const {
  ossl::X509CrlPtr crl(X509_CRL_new());
  X509_CRL_set_version(crl.get(), 1);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(keys_->ark_cert.get()));
  ASN1_TIME* t = ASN1_TIME_set(nullptr, absl::ToTimeT(this_update));
  X509_CRL_set1_lastUpdate(crl.get(), t);
  ASN1_TIME_set(t, absl::ToTimeT(next_update));
  X509_CRL_set1_nextUpdate(crl.get(), t);
  for (uint64_t serial : revoked_serials) {
    X509_REVOKED* rev = X509_REVOKED_new();
    ASN1_INTEGER* s = ASN1_INTEGER_new();
    ASN1_INTEGER_set_uint64(s, serial);
    X509_REVOKED_set_serialNumber(rev, s);
    ASN1_INTEGER_free(s);
    ASN1_TIME_set(t, absl::ToTimeT(this_update));
    X509_REVOKED_set_revocationDate(rev, t);
    X509_CRL_add0_revoked(crl.get(), rev);
  }
  ASN1_TIME_free(t);
  X509_CRL_sort(crl.get());
  ossl::EvpMdCtxPtr md(EVP_MD_CTX_new());
  RETURN_IF_ERROR(InitPssSign(md.get(), keys_->ark.get()));
  if (X509_CRL_sign_ctx(crl.get(), md.get()) <= 0) return Err("CRL signature");
  unsigned char* der = nullptr;
  int n = i2d_X509_CRL(crl.get(), &der);
  std::vector<uint8_t> out(der, der + n);
  OPENSSL_free(der);
  return out;
}

const SoftwareSnpSigner& SharedSnpSigner(Product product) {
  static std::mutex mu;
  static std::map<Product, std::unique_ptr<SoftwareSnpSigner>> signers;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = signers[product];
  if (!slot) {
    auto signer = SoftwareSnpSigner::Create(product);
    if (!signer.ok()) std::abort();
    slot = *std::move(signer);
  }
  return *slot;
}

}  // namespace attest::testing
