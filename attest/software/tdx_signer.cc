#include "tdx_signer.h"

#include <openssl/asn1.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/verify_options.h"
#include "common/openssl_util.h"

namespace attest::testing {
namespace {

constexpr char kOrg[] = "SoftwareTdxSigner TEST (not Intel)";
constexpr char kSgxOid[] = "1.2.840.113741.1.13.1";

absl::Status Err(absl::string_view what) {
  return absl::InternalError(absl::StrCat("tdx signer: ", what, ": ", ossl::LastError()));
}

absl::StatusOr<ossl::X509Ptr> MakeCert(const std::string& cn, uint64_t serial, EVP_PKEY* key,
                                       X509* issuer, EVP_PKEY* issuer_key, bool ca,
                                       const std::vector<uint8_t>& sgx_ext) {
  ossl::X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), serial);
  X509_NAME* name = X509_NAME_new();
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(kOrg),
                             -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_subject_name(cert.get(), name);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509_NAME_free(name);
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), 1577836800);  // 2020
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), 2524608000);   // 2050
  X509_set_pubkey(cert.get(), key);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  X509_EXTENSION* bc = X509V3_EXT_conf_nid(nullptr, &ctx, NID_basic_constraints,
                                           ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  X509_add_ext(cert.get(), bc, -1);
  X509_EXTENSION_free(bc);
  if (ca) {
    X509_EXTENSION* ku =
        X509V3_EXT_conf_nid(nullptr, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    X509_add_ext(cert.get(), ku, -1);
    X509_EXTENSION_free(ku);
  }
  if (!sgx_ext.empty()) {
    ossl::Asn1ObjectPtr obj(OBJ_txt2obj(kSgxOid, 1));
    ASN1_OCTET_STRING* data = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(data, sgx_ext.data(), static_cast<int>(sgx_ext.size()));
    X509_EXTENSION* ext = X509_EXTENSION_create_by_OBJ(nullptr, obj.get(), 0, data);
    ASN1_OCTET_STRING_free(data);
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) return Err("certificate signature");
  return cert;
}

// ASN.1 builders over OpenSSL's generic types (no hand-written DER).
using TypeStack = STACK_OF(ASN1_TYPE);

ASN1_TYPE* Oid(const std::string& oid) {
  ASN1_TYPE* t = ASN1_TYPE_new();
  ASN1_TYPE_set(t, V_ASN1_OBJECT, OBJ_txt2obj(oid.c_str(), 1));
  return t;
}
ASN1_TYPE* Int(int64_t v) {
  ASN1_TYPE* t = ASN1_TYPE_new();
  ASN1_INTEGER* i = ASN1_INTEGER_new();
  ASN1_INTEGER_set_int64(i, v);
  ASN1_TYPE_set(t, V_ASN1_INTEGER, i);
  return t;
}
ASN1_TYPE* Octets(const std::vector<uint8_t>& v) {
  ASN1_TYPE* t = ASN1_TYPE_new();
  ASN1_OCTET_STRING* s = ASN1_OCTET_STRING_new();
  ASN1_OCTET_STRING_set(s, v.data(), static_cast<int>(v.size()));
  ASN1_TYPE_set(t, V_ASN1_OCTET_STRING, s);
  return t;
}
std::vector<uint8_t> Encode(TypeStack* items) {
  unsigned char* der = nullptr;
  int n = i2d_ASN1_SEQUENCE_ANY(items, &der);
  std::vector<uint8_t> out(der, der + n);
  OPENSSL_free(der);
  sk_ASN1_TYPE_pop_free(items, ASN1_TYPE_free);
  return out;
}
ASN1_TYPE* Seq(TypeStack* items) {
  std::vector<uint8_t> der = Encode(items);
  ASN1_TYPE* t = ASN1_TYPE_new();
  ASN1_STRING* s = ASN1_STRING_type_new(V_ASN1_SEQUENCE);
  ASN1_STRING_set(s, der.data(), static_cast<int>(der.size()));
  ASN1_TYPE_set(t, V_ASN1_SEQUENCE, s);
  return t;
}
ASN1_TYPE* Pair(const std::string& oid, ASN1_TYPE* value) {
  TypeStack* p = sk_ASN1_TYPE_new_null();
  sk_ASN1_TYPE_push(p, Oid(oid));
  sk_ASN1_TYPE_push(p, value);
  return Seq(p);
}

std::vector<uint8_t> SgxExtension(const SoftwareTdxSigner::QuoteSpec& s) {
  std::string base = kSgxOid;
  TypeStack* tcb = sk_ASN1_TYPE_new_null();
  for (int i = 0; i < 16; ++i)
    sk_ASN1_TYPE_push(
        tcb, Pair(absl::StrCat(base, ".2.", i + 1), Int(s.pck_tcb[static_cast<size_t>(i)])));
  sk_ASN1_TYPE_push(tcb, Pair(base + ".2.17", Int(s.pcesvn)));
  sk_ASN1_TYPE_push(
      tcb, Pair(base + ".2.18", Octets(std::vector<uint8_t>(s.pck_tcb.begin(), s.pck_tcb.end()))));
  TypeStack* top = sk_ASN1_TYPE_new_null();
  sk_ASN1_TYPE_push(top, Pair(base + ".1", Octets(std::vector<uint8_t>(16, 0xab))));
  sk_ASN1_TYPE_push(top, Pair(base + ".2", Seq(tcb)));
  sk_ASN1_TYPE_push(top, Pair(base + ".3", Octets({0, 0})));
  sk_ASN1_TYPE_push(top, Pair(base + ".4", Octets(s.fmspc)));
  return Encode(top);
}

std::array<uint8_t, 64> SignRaw(EVP_PKEY* key, std::span<const uint8_t> msg) {
  ossl::EvpMdCtxPtr md(EVP_MD_CTX_new());
  size_t len = 0;
  EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, key);
  EVP_DigestSign(md.get(), nullptr, &len, msg.data(), msg.size());
  std::vector<uint8_t> der(len);
  EVP_DigestSign(md.get(), der.data(), &len, msg.data(), msg.size());
  const unsigned char* p = der.data();
  ossl::EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)));  // NOLINT
  std::array<uint8_t, 64> out{};
  BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out.data(), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out.data() + 32, 32);
  return out;
}

void PutLe(std::vector<uint8_t>& b, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
template <size_t N>
void Put(std::vector<uint8_t>& b, const std::array<uint8_t, N>& a) {
  b.insert(b.end(), a.begin(), a.end());
}

std::string Components(const std::array<uint8_t, 16>& c) {
  std::string out = "[";
  for (size_t i = 0; i < 16; ++i) absl::StrAppend(&out, i ? "," : "", "{\"svn\":", c[i], "}");
  return out + "]";
}

}  // namespace

struct SoftwareTdxSigner::Keys {
  ossl::EvpPkeyPtr root, pck_ca, tcb_signer;
  ossl::X509Ptr root_cert, pck_ca_cert, tcb_signer_cert;
};

SoftwareTdxSigner::SoftwareTdxSigner(std::unique_ptr<Keys> keys) : keys_(std::move(keys)) {
  root_der_ = ossl::ToDer(keys_->root_cert.get());
  tcb_signer_der_ = ossl::ToDer(keys_->tcb_signer_cert.get());
}
SoftwareTdxSigner::~SoftwareTdxSigner() = default;

std::array<uint8_t, 32> SoftwareTdxSigner::QeMrsigner() {
  std::array<uint8_t, 32> m;
  m.fill(0x5e);
  return m;
}

absl::StatusOr<std::unique_ptr<SoftwareTdxSigner>> SoftwareTdxSigner::Create() {
  auto k = std::make_unique<Keys>();
  k->root.reset(EVP_EC_gen("P-256"));
  k->pck_ca.reset(EVP_EC_gen("P-256"));
  k->tcb_signer.reset(EVP_EC_gen("P-256"));
  if (!k->root || !k->pck_ca || !k->tcb_signer) return Err("keygen");
  ASSIGN_OR_RETURN(k->root_cert, MakeCert("Test SGX Root CA", 1, k->root.get(), nullptr,
                                          k->root.get(), true, {}));
  ASSIGN_OR_RETURN(k->pck_ca_cert, MakeCert("Test SGX PCK Platform CA", 2, k->pck_ca.get(),
                                            k->root_cert.get(), k->root.get(), true, {}));
  ASSIGN_OR_RETURN(k->tcb_signer_cert, MakeCert("Test SGX TCB Signing", 3, k->tcb_signer.get(),
                                                k->root_cert.get(), k->root.get(), false, {}));
  return std::unique_ptr<SoftwareTdxSigner>(new SoftwareTdxSigner(std::move(k)));
}

absl::StatusOr<std::vector<uint8_t>> SoftwareTdxSigner::SignQuote(const QuoteSpec& s) const {
  ossl::EvpPkeyPtr pck(EVP_EC_gen("P-256")), attestation(EVP_EC_gen("P-256"));
  ASSIGN_OR_RETURN(auto pck_cert,
                   MakeCert("Test SGX PCK Certificate", s.pck_serial, pck.get(),
                            keys_->pck_ca_cert.get(), keys_->pck_ca.get(), false, SgxExtension(s)));
  ASSIGN_OR_RETURN(std::string pem,
                   ossl::CertificatesToPem({ossl::ToDer(pck_cert.get()),
                                            ossl::ToDer(keys_->pck_ca_cert.get()), root_der_}));

  // Attestation key as x || y.
  std::vector<uint8_t> point(65);
  size_t plen = 0;
  EVP_PKEY_get_octet_string_param(attestation.get(), "pub", point.data(), point.size(), &plen);
  std::array<uint8_t, 64> att_key{};
  std::copy(point.begin() + 1, point.begin() + 65, att_key.begin());
  std::vector<uint8_t> auth(32, 0x7a);

  // QE report: report data binds the attestation key and auth data.
  std::vector<uint8_t> qe;
  qe.insert(qe.end(), 16, 0);  // CPUSVN
  PutLe(qe, 0, 4);             // MISCSELECT
  qe.insert(qe.end(), 28, 0);
  std::array<uint8_t, 16> attrs{0x11};
  Put(qe, attrs);                 // ATTRIBUTES
  qe.insert(qe.end(), 32, 0x22);  // MRENCLAVE
  qe.insert(qe.end(), 32, 0);
  Put(qe, QeMrsigner());
  qe.insert(qe.end(), 96, 0);
  PutLe(qe, kQeProdId, 2);
  PutLe(qe, s.qe_isvsvn, 2);
  qe.insert(qe.end(), 60, 0);
  std::vector<uint8_t> bound(att_key.begin(), att_key.end());
  bound.insert(bound.end(), auth.begin(), auth.end());
  std::vector<uint8_t> h = ossl::Sha256(bound);
  qe.insert(qe.end(), h.begin(), h.end());
  qe.insert(qe.end(), 32, 0);
  std::array<uint8_t, 64> qe_sig = SignRaw(pck.get(), qe);

  std::vector<uint8_t> q;
  PutLe(q, s.version, 2);
  PutLe(q, 2, 2);
  PutLe(q, 0x81, 4);
  PutLe(q, 0, 4);
  q.insert(q.end(), {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95,
                     0x7f, 0x06, 0x07});
  q.insert(q.end(), 20, 0);
  const tdx::TdReport& b = s.body;
  if (s.version == 5) {
    PutLe(q, b.tdx15 ? 3 : 2, 2);
    PutLe(q, b.tdx15 ? tdx::kTdReport15Size : tdx::kTdReport10Size, 4);
  }
  Put(q, b.tee_tcb_svn);
  Put(q, b.mrseam);
  Put(q, b.mrsignerseam);
  PutLe(q, b.seam_attributes, 8);
  PutLe(q, b.td_attributes, 8);
  PutLe(q, b.xfam, 8);
  Put(q, b.mrtd);
  Put(q, b.mrconfigid);
  Put(q, b.mrowner);
  Put(q, b.mrownerconfig);
  for (const auto& r : b.rtmr) Put(q, r);
  Put(q, b.report_data);
  if (b.tdx15) {
    Put(q, b.tee_tcb_svn2);
    Put(q, b.mrservicetd);
  }
  std::array<uint8_t, 64> quote_sig = SignRaw(attestation.get(), q);
  std::vector<uint8_t> cert;
  cert.insert(cert.end(), qe.begin(), qe.end());
  Put(cert, qe_sig);
  PutLe(cert, auth.size(), 2);
  cert.insert(cert.end(), auth.begin(), auth.end());
  PutLe(cert, 5, 2);
  PutLe(cert, pem.size(), 4);
  cert.insert(cert.end(), pem.begin(), pem.end());
  std::vector<uint8_t> sig;
  Put(sig, quote_sig);
  Put(sig, att_key);
  PutLe(sig, 6, 2);
  PutLe(sig, cert.size(), 4);
  sig.insert(sig.end(), cert.begin(), cert.end());
  PutLe(q, sig.size(), 4);
  q.insert(q.end(), sig.begin(), sig.end());
  return q;
}

absl::StatusOr<std::string> SoftwareTdxSigner::SignCollateral(const std::string& key,
                                                              const std::string& object) const {
  auto sig = SignRaw(
      keys_->tcb_signer.get(),
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(object.data()), object.size()));
  return absl::StrCat("{\"", key, "\":", object, ",\"signature\":\"", HexEncode(sig), "\"}");
}

namespace {
absl::StatusOr<std::vector<uint8_t>> MakeCrl(X509* issuer, EVP_PKEY* key,
                                             const std::vector<uint64_t>& revoked) {
  ossl::X509CrlPtr crl(X509_CRL_new());
  X509_CRL_set_version(crl.get(), 1);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer));
  ASN1_TIME* t = ASN1_TIME_set(nullptr, 1577836800);
  X509_CRL_set1_lastUpdate(crl.get(), t);
  ASN1_TIME_set(t, 2524608000);
  X509_CRL_set1_nextUpdate(crl.get(), t);
  for (uint64_t serial : revoked) {
    X509_REVOKED* r = X509_REVOKED_new();
    ASN1_INTEGER* s = ASN1_INTEGER_new();
    ASN1_INTEGER_set_uint64(s, serial);
    X509_REVOKED_set_serialNumber(r, s);
    ASN1_INTEGER_free(s);
    X509_REVOKED_set_revocationDate(r, t);
    X509_CRL_add0_revoked(crl.get(), r);
  }
  ASN1_TIME_free(t);
  if (X509_CRL_sign(crl.get(), key, EVP_sha256()) <= 0) return Err("CRL signature");
  unsigned char* der = nullptr;
  int n = i2d_X509_CRL(crl.get(), &der);
  std::vector<uint8_t> out(der, der + n);
  OPENSSL_free(der);
  return out;
}
}  // namespace

absl::StatusOr<std::vector<uint8_t>> SoftwareTdxSigner::RootCrl() const {
  return MakeCrl(keys_->root_cert.get(), keys_->root.get(), {});
}

absl::StatusOr<std::vector<uint8_t>> SoftwareTdxSigner::PckCrl(
    const std::vector<uint64_t>& revoked) const {
  return MakeCrl(keys_->pck_ca_cert.get(), keys_->pck_ca.get(), revoked);
}

std::string TcbInfoJson(const std::vector<uint8_t>& fmspc, const std::vector<TestTcbLevel>& levels,
                        const std::string& issue, const std::string& next) {
  std::string out = absl::StrCat("{\"id\":\"TDX\",\"version\":3,\"issueDate\":\"", issue,
                                 "\",\"nextUpdate\":\"", next, "\",\"fmspc\":\"", HexEncode(fmspc),
                                 "\",\"pceId\":\"0000\",\"tcbLevels\":[");
  for (size_t i = 0; i < levels.size(); ++i) {
    const TestTcbLevel& l = levels[i];
    absl::StrAppend(&out, i ? "," : "", "{\"tcb\":{\"sgxtcbcomponents\":", Components(l.sgx),
                    ",\"pcesvn\":", l.pcesvn, ",\"tdxtcbcomponents\":", Components(l.tdx),
                    "},\"tcbDate\":\"2024-01-01T00:00:00Z\",\"tcbStatus\":\"", l.status,
                    "\",\"advisoryIDs\":[\"INTEL-SA-TEST-", i, "\"]}");
  }
  return out + "]}";
}

std::string QeIdentityJson(uint16_t isvsvn_up_to_date, const std::string& issue,
                           const std::string& next) {
  return absl::StrCat(
      "{\"id\":\"TD_QE\",\"version\":2,\"issueDate\":\"", issue, "\",\"nextUpdate\":\"", next,
      "\",\"miscselect\":\"00000000\",\"miscselectMask\":\"FFFFFFFF\",\"attributes\":\"",
      "11000000000000000000000000000000\",\"attributesMask\":\"FBFFFFFFFFFFFFFF0000000000000000\",",
      "\"mrsigner\":\"", HexEncode(SoftwareTdxSigner::QeMrsigner()),
      "\",\"isvprodid\":", SoftwareTdxSigner::kQeProdId,
      ",\"tcbLevels\":[{\"tcb\":{\"isvsvn\":", isvsvn_up_to_date,
      "},\"tcbStatus\":\"UpToDate\"},{\"tcb\":{\"isvsvn\":0},\"tcbStatus\":\"OutOfDate\"}]}");
}

SoftwareTdxSigner::QuoteSpec DefaultTestQuoteSpec() {
  SoftwareTdxSigner::QuoteSpec s;
  s.version = 4;
  s.body.tee_tcb_svn = {5, 0, 2};
  s.pck_tcb = {4, 4, 2, 2, 4, 1, 0, 5};
  s.pcesvn = 13;
  return s;
}

absl::Status WriteTestTdxRoots(const SoftwareTdxSigner& signer,
                               const SoftwareTdxSigner::QuoteSpec& spec,
                               const std::filesystem::path& dir) {
  TestTcbLevel level;
  level.sgx = spec.pck_tcb;
  level.pcesvn = spec.pcesvn;
  level.tdx = spec.body.tee_tcb_svn;
  level.status = "UpToDate";
  const std::string issue = FormatRfc3339(absl::Now() - absl::Hours(24));
  const std::string next = FormatRfc3339(absl::Now() + absl::Hours(24 * 30));
  ASSIGN_OR_RETURN(auto tcb_info,
                   signer.SignCollateral("tcbInfo", TcbInfoJson(spec.fmspc, {level}, issue, next)));
  ASSIGN_OR_RETURN(
      auto qe_identity,
      signer.SignCollateral("enclaveIdentity", QeIdentityJson(spec.qe_isvsvn, issue, next)));
  ASSIGN_OR_RETURN(auto chain, CertificatesToPem(signer.tcb_signing_chain()));
  ASSIGN_OR_RETURN(auto root, CertificatesToPem({signer.root_der()}));
  const std::filesystem::path collateral = dir / "tdx-collateral";
  std::error_code ec;
  std::filesystem::create_directories(collateral, ec);
  RETURN_IF_ERROR(WriteFileAtomically(collateral / "tcb_info.json", tcb_info));
  RETURN_IF_ERROR(WriteFileAtomically(collateral / "qe_identity.json", qe_identity));
  RETURN_IF_ERROR(WriteFileAtomically(collateral / "tcb_info_issuer_chain.pem", chain));
  return WriteFileAtomically(dir / "tdx_root.pem", root);
}

}  // namespace attest::testing
