#include "attest/tdx/verify.h"

#include <openssl/asn1.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509_vfy.h>

#include <map>
#include <mutex>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/tdx/ccel.h"
#include "attest/tdx/collateral.h"
#include "common/openssl_util.h"
#include "tdx/roots_data.h"

namespace attest::tdx {
namespace {

using SeqPtr = std::unique_ptr<STACK_OF(ASN1_TYPE), ossl::Deleter<+[](STACK_OF(ASN1_TYPE) * s) {
                                 sk_ASN1_TYPE_pop_free(s, ASN1_TYPE_free);
                               }>>;

absl::StatusOr<SeqPtr> DecodeSequence(const unsigned char* data, long len,
                                      absl::string_view what) {  // NOLINT
  const unsigned char* p = data;
  SeqPtr seq(d2i_ASN1_SEQUENCE_ANY(nullptr, &p, len));
  if (!seq || p != data + len) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("PCK SGX extension: ", what, " is not a DER SEQUENCE"));
  }
  return seq;
}

std::string Oid(const ASN1_TYPE* t) {
  if (t == nullptr || t->type != V_ASN1_OBJECT) return "";
  char buf[80];
  OBJ_obj2txt(buf, sizeof(buf), t->value.object, 1);
  return buf;
}

absl::StatusOr<std::vector<uint8_t>> Octets(const ASN1_TYPE* t, absl::string_view what) {
  if (t == nullptr || t->type != V_ASN1_OCTET_STRING) {
    return absl::InvalidArgumentError(
        absl::StrCat("PCK SGX extension: ", what, " is not an OCTET STRING"));
  }
  const ASN1_STRING* s = t->value.octet_string;
  return std::vector<uint8_t>(ASN1_STRING_get0_data(s),
                              ASN1_STRING_get0_data(s) + ASN1_STRING_length(s));
}

absl::StatusOr<int64_t> Integer(const ASN1_TYPE* t, absl::string_view what) {
  int64_t v = 0;
  if (t == nullptr || t->type != V_ASN1_INTEGER ||
      ASN1_INTEGER_get_int64(&v, t->value.integer) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("PCK SGX extension: ", what, " is not an INTEGER"));
  }
  return v;
}

constexpr char kSgxExtensionOid[] = "1.2.840.113741.1.13.1";

}  // namespace

absl::StatusOr<PckExtensions> ParsePckExtensions(std::span<const uint8_t> cert_der) {
  ASSIGN_OR_RETURN(auto cert, ossl::ParseDerCertificate(cert_der, "PCK certificate"));
  ossl::Asn1ObjectPtr oid(OBJ_txt2obj(kSgxExtensionOid, 1));
  int idx = X509_get_ext_by_OBJ(cert.get(), oid.get(), -1);
  if (idx < 0)
    return absl::InvalidArgumentError("PCK certificate: no SGX extension (1.2.840.113741.1.13.1)");
  const ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(X509_get_ext(cert.get(), idx));
  ASSIGN_OR_RETURN(auto top, DecodeSequence(ASN1_STRING_get0_data(value), ASN1_STRING_length(value),
                                            "the extension"));
  PckExtensions out;
  bool have_tcb = false, have_fmspc = false, have_pceid = false;
  for (int i = 0; i < sk_ASN1_TYPE_num(top.get()); ++i) {
    const ASN1_TYPE* entry = sk_ASN1_TYPE_value(top.get(), i);
    if (entry->type != V_ASN1_SEQUENCE)
      return absl::InvalidArgumentError("PCK SGX extension: entry is not a SEQUENCE");
    ASSIGN_OR_RETURN(auto pair, DecodeSequence(entry->value.sequence->data,
                                               entry->value.sequence->length, "an entry"));
    if (sk_ASN1_TYPE_num(pair.get()) != 2)
      return absl::InvalidArgumentError("PCK SGX extension: entry is not (OID, value)");
    std::string name = Oid(sk_ASN1_TYPE_value(pair.get(), 0));
    const ASN1_TYPE* v = sk_ASN1_TYPE_value(pair.get(), 1);
    if (name == std::string(kSgxExtensionOid) + ".1") {
      ASSIGN_OR_RETURN(out.ppid, Octets(v, "PPID"));
    } else if (name == std::string(kSgxExtensionOid) + ".2") {
      if (v->type != V_ASN1_SEQUENCE)
        return absl::InvalidArgumentError("PCK SGX extension: TCB is not a SEQUENCE");
      ASSIGN_OR_RETURN(auto tcb,
                       DecodeSequence(v->value.sequence->data, v->value.sequence->length, "TCB"));
      for (int k = 0; k < sk_ASN1_TYPE_num(tcb.get()); ++k) {
        const ASN1_TYPE* c = sk_ASN1_TYPE_value(tcb.get(), k);
        if (c->type != V_ASN1_SEQUENCE)
          return absl::InvalidArgumentError("PCK SGX extension: TCB entry is not a SEQUENCE");
        ASSIGN_OR_RETURN(auto cp, DecodeSequence(c->value.sequence->data, c->value.sequence->length,
                                                 "a TCB entry"));
        if (sk_ASN1_TYPE_num(cp.get()) != 2)
          return absl::InvalidArgumentError("PCK SGX extension: TCB entry is not (OID, value)");
        std::string cname = Oid(sk_ASN1_TYPE_value(cp.get(), 0));
        const ASN1_TYPE* cv = sk_ASN1_TYPE_value(cp.get(), 1);
        std::string prefix = std::string(kSgxExtensionOid) + ".2.";
        if (cname.rfind(prefix, 0) != 0) continue;
        int n = std::atoi(cname.c_str() + prefix.size());
        if (n >= 1 && n <= 16) {
          ASSIGN_OR_RETURN(int64_t svn, Integer(cv, "a TCB component"));
          if (svn < 0 || svn > 255)
            return absl::InvalidArgumentError("PCK SGX extension: TCB component out of range");
          out.tcb_components[static_cast<size_t>(n - 1)] = static_cast<uint8_t>(svn);
        } else if (n == 17) {
          ASSIGN_OR_RETURN(int64_t svn, Integer(cv, "PCESVN"));
          if (svn < 0 || svn > 65535)
            return absl::InvalidArgumentError("PCK SGX extension: PCESVN out of range");
          out.pcesvn = static_cast<uint32_t>(svn);
        } else if (n == 18) {
          ASSIGN_OR_RETURN(out.cpusvn, Octets(cv, "CPUSVN"));
        }
      }
      have_tcb = true;
    } else if (name == std::string(kSgxExtensionOid) + ".3") {
      ASSIGN_OR_RETURN(out.pce_id, Octets(v, "PCE-ID"));
      have_pceid = out.pce_id.size() == 2;
    } else if (name == std::string(kSgxExtensionOid) + ".4") {
      ASSIGN_OR_RETURN(out.fmspc, Octets(v, "FMSPC"));
      have_fmspc = out.fmspc.size() == 6;
    }
  }
  if (!have_tcb || !have_fmspc || !have_pceid) {
    return absl::InvalidArgumentError(
        "PCK SGX extension: TCB, FMSPC (6 bytes) or PCE-ID (2 bytes) missing");
  }
  return out;
}

namespace {

// ECDSA P-256 over SHA-256 with a raw r||s signature and an uncompressed x||y public key.
absl::StatusOr<bool> VerifyP256(std::span<const uint8_t> key_xy, EVP_PKEY* key,
                                std::span<const uint8_t> rs, std::span<const uint8_t> message) {
  ossl::EvpPkeyPtr owned;
  if (key == nullptr) {
    std::vector<uint8_t> point = {0x04};
    point.insert(point.end(), key_xy.begin(), key_xy.end());
    // On the curve and not infinity. P-256 has cofactor 1, so the full check's extra n*Q scalar
    // multiplication (a third of a verify) adds nothing.
    auto k = ossl::EcPublicKey("P-256", point, /*full_check=*/false);
    if (!k.ok()) return false;  // not a key: the signature does not verify with it
    owned = std::move(*k);
    key = owned.get();
  }
  ASSIGN_OR_RETURN(auto der, ossl::EcdsaSignatureDer(rs.first(32), rs.subspan(32, 32)));
  ossl::EvpMdCtxPtr md(EVP_MD_CTX_new());
  bool ok = md && EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestVerify(md.get(), der.data(), der.size(), message.data(), message.size()) == 1;
  ERR_clear_error();
  return ok;
}

absl::Status ExpectBytes(const std::optional<std::vector<uint8_t>>& want,
                         std::span<const uint8_t> have, absl::string_view name, CheckLog& log) {
  if (!want) return absl::OkStatus();
  if (want->size() != have.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("expected %s must be %u bytes", name, have.size()));
  }
  bool same = std::equal(have.begin(), have.end(), want->begin());
  return log.Expect(
      same, absl::StrCat("tdx.expect.", name),
      same ? absl::StrCat(name, " ", HexEncode(have))
           : absl::StrCat(name, " ", HexEncode(have), " but expected ", HexEncode(*want)));
}

// Verifies a collateral document's chain (TCB Signing certificate to a trusted root) and its
// signature over the exact bytes of the signed object. Check `name`.
absl::Status VerifySignedCollateral(const SignedObject& doc,
                                    const std::vector<std::vector<uint8_t>>& chain,
                                    const std::vector<std::vector<uint8_t>>& anchors,
                                    absl::Time now, absl::string_view name, CheckLog& L) {
  if (chain.size() != 2) {
    return absl::InvalidArgumentError(
        "TCB signing chain: expected the TCB Signing certificate, then the root");
  }
  bool anchored =
      std::any_of(anchors.begin(), anchors.end(), [&](const auto& a) { return a == chain[1]; });
  if (!anchored) return L.Fail(name, "the TCB signing chain does not end in a trusted root");
  ASSIGN_OR_RETURN(auto signer, ossl::ParseDerCertificate(chain[0], "TCB Signing certificate"));
  ASSIGN_OR_RETURN(auto root, ossl::ParseDerCertificate(chain[1], "root certificate"));
  ASSIGN_OR_RETURN(std::string chain_error,
                   ossl::ChainError(signer.get(), {root.get()}, {}, {}, now));
  if (!chain_error.empty())
    return L.Fail(name, absl::StrCat("TCB Signing certificate: ", chain_error));
  ossl::EvpPkeyPtr key(X509_get_pubkey(signer.get()));
  ASSIGN_OR_RETURN(
      bool ok, VerifyP256({}, key.get(), doc.signature,
                          std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(doc.raw.data()),
                                                   doc.raw.size())));
  return L.Expect(
      ok, name,
      ok ? "signature by the Intel SGX TCB Signing certificate verifies over the exact object bytes"
         : "signature over the object bytes does not verify with the TCB Signing certificate");
}

}  // namespace

// A verified PCK chain: what the rest of the verification needs from it.
struct PckChain {
  std::shared_ptr<EVP_PKEY> key;
  PckExtensions extensions;
  absl::Time valid_from = absl::InfinitePast(), valid_until = absl::InfiniteFuture();
};

// Verified collateral signatures: the parsed documents and the signer's validity.
struct SignedCollateral {
  TcbInfo tcb_info;
  std::optional<QeIdentity> qe_identity;
  absl::Time valid_from = absl::InfinitePast(), valid_until = absl::InfiniteFuture();
};

struct VerificationCache::Impl {
  static constexpr size_t kMaxEntries = 256;
  mutable std::mutex mu;
  std::map<std::vector<uint8_t>, std::shared_ptr<const PckChain>> chains;
  std::map<std::vector<uint8_t>, std::shared_ptr<const SignedCollateral>> collateral;

  template <typename T>
  static std::shared_ptr<const T> Find(
      const std::map<std::vector<uint8_t>, std::shared_ptr<const T>>& m,
      const std::vector<uint8_t>& key, absl::Time now) {
    auto it = m.find(key);
    if (it == m.end() || now < it->second->valid_from || now > it->second->valid_until)
      return nullptr;
    return it->second;
  }
  std::shared_ptr<const PckChain> FindChain(const std::vector<uint8_t>& key, absl::Time now) const {
    std::lock_guard<std::mutex> lock(mu);
    return Find(chains, key, now);
  }
  std::shared_ptr<const SignedCollateral> FindCollateral(const std::vector<uint8_t>& key,
                                                         absl::Time now) const {
    std::lock_guard<std::mutex> lock(mu);
    return Find(collateral, key, now);
  }
  template <typename T>
  void Store(std::map<std::vector<uint8_t>, std::shared_ptr<const T>>& m,
             const std::vector<uint8_t>& key, std::shared_ptr<const T> v) {
    std::lock_guard<std::mutex> lock(mu);
    if (m.size() >= kMaxEntries) m.clear();
    m[key] = std::move(v);
  }
  void StoreChain(const std::vector<uint8_t>& key, std::shared_ptr<const PckChain> v) {
    Store(chains, key, std::move(v));
  }
  void StoreCollateral(const std::vector<uint8_t>& key, std::shared_ptr<const SignedCollateral> v) {
    Store(collateral, key, std::move(v));
  }
};

VerificationCache::VerificationCache() : impl_(std::make_unique<Impl>()) {}
VerificationCache::~VerificationCache() = default;
size_t VerificationCache::size() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->chains.size() + impl_->collateral.size();
}

namespace {

absl::StatusOr<std::vector<std::vector<uint8_t>>> Anchors(const Options& o) {
  if (!o.trust_anchors_der.empty()) return o.trust_anchors_der;
  ASSIGN_OR_RETURN(auto root, BuiltinIntelSgxRootDer());
  return std::vector<std::vector<uint8_t>>{root};
}

}  // namespace

absl::StatusOr<std::vector<uint8_t>> BuiltinIntelSgxRootDer() {
  auto pem = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(kIntelSgxRootCaPem.data()),
                                      kIntelSgxRootCaPem.size());
  auto root = ParseCertificates(pem, "built-in Intel SGX Root CA");
  if (!root.ok() || HexEncode(ossl::Sha256(root->front())) != kIntelSgxRootCaSha256) {
    return absl::InternalError("built-in Intel SGX Root CA does not match its pinned SHA-256");
  }
  return root->front();
}

namespace {

// Cache key: the given bytes and every trust input (anchors, CRLs), length-prefixed.
std::vector<uint8_t> CacheKey(const std::vector<std::string_view>& parts, const Options& o) {
  std::string buf;
  auto add = [&buf](std::string_view p) {
    uint64_t n = p.size();
    buf.append(reinterpret_cast<const char*>(&n), sizeof(n));
    buf.append(p);
  };
  for (auto p : parts) add(p);
  for (const auto& a : o.trust_anchors_der)
    add(std::string_view(reinterpret_cast<const char*>(a.data()), a.size()));
  add(o.require_crl ? "|crl-required" : "|");
  for (const auto& c : o.crls_der)
    add(std::string_view(reinterpret_cast<const char*>(c.data()), c.size()));
  return ossl::Sha256(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(buf.data()), buf.size()));
}

absl::StatusOr<std::shared_ptr<const PckChain>> VerifyPckChain(const Quote& q, const Options& o,
                                                               CheckLog& L) {
  // Leaf, PCK CA, root; the root must be a trusted one, byte for byte.
  ASSIGN_OR_RETURN(auto chain,
                   ParseCertificates(std::span<const uint8_t>(
                                         reinterpret_cast<const uint8_t*>(q.pck_chain_pem.data()),
                                         q.pck_chain_pem.size()),
                                     "PCK certificate chain"));
  if (chain.size() != 3) {
    return L.Fail(
        "tdx.pck.chain",
        absl::StrFormat("the PCK chain has %u certificates (leaf, PCK CA, root)", chain.size()));
  }
  ASSIGN_OR_RETURN(auto anchors, Anchors(o));
  bool anchored =
      std::any_of(anchors.begin(), anchors.end(), [&](const auto& a) { return a == chain[2]; });
  RETURN_IF_ERROR(L.Expect(
      anchored, "tdx.pck.anchor",
      anchored ? "the chain's root is the trusted Intel SGX Root CA (pinned)"
               : absl::StrCat("the chain's root (sha256 ",
                              HexEncode(ossl::Sha256(chain[2])).substr(0, 16),
                              "…) is not a trusted root",
                              o.trust_anchors_der.empty() ? " (pass --trust-anchor)" : "")));
  ASSIGN_OR_RETURN(auto leaf, ossl::ParseDerCertificate(chain[0], "PCK certificate"));
  ASSIGN_OR_RETURN(auto ca, ossl::ParseDerCertificate(chain[1], "PCK CA certificate"));
  ASSIGN_OR_RETURN(auto root, ossl::ParseDerCertificate(chain[2], "root certificate"));
  std::vector<ossl::X509CrlPtr> crls;
  for (const auto& der : o.crls_der) {
    ASSIGN_OR_RETURN(auto crl, ossl::ParseDerCrl(der, "CRL"));
    crls.push_back(std::move(crl));
  }
  if (o.require_crl && crls.size() < 2) {
    return absl::InvalidArgumentError("--require-crl needs the root CA CRL and the PCK CRL");
  }
  std::vector<X509_CRL*> crl_ptrs;
  for (const auto& crl : crls) crl_ptrs.push_back(crl.get());
  ASSIGN_OR_RETURN(std::string chain_error,
                   ossl::ChainError(leaf.get(), {root.get()}, {ca.get()}, crl_ptrs, o.Now()));
  if (!chain_error.empty()) return L.Fail("tdx.pck.chain", chain_error);
  L.Pass("tdx.pck.chain",
         absl::StrCat(
             "Intel SGX PCK Certificate <- PCK CA <- Intel SGX Root CA, valid at ",
             FormatRfc3339(o.Now()),
             !crls.empty() ? absl::StrCat(", ", crls.size(), " CRLs checked") : ", no CRL given"));
  auto result = std::make_shared<PckChain>();
  ASSIGN_OR_RETURN(result->extensions, ParsePckExtensions(chain[0]));
  L.Pass("tdx.pck.extensions", absl::StrCat("FMSPC ", HexEncode(result->extensions.fmspc),
                                            ", PCE-ID ", HexEncode(result->extensions.pce_id),
                                            ", PCESVN ", result->extensions.pcesvn));
  result->key = std::shared_ptr<EVP_PKEY>(X509_get_pubkey(leaf.get()), EVP_PKEY_free);
  for (X509* c : {leaf.get(), ca.get(), root.get()}) {
    ASSIGN_OR_RETURN(absl::Time from, ossl::Asn1TimeToAbsl(X509_get0_notBefore(c)));
    ASSIGN_OR_RETURN(absl::Time until, ossl::Asn1TimeToAbsl(X509_get0_notAfter(c)));
    result->valid_from = std::max(result->valid_from, from);
    result->valid_until = std::min(result->valid_until, until);
  }
  for (const auto& crl : crls) {
    ASSIGN_OR_RETURN(absl::Time last, ossl::Asn1TimeToAbsl(X509_CRL_get0_lastUpdate(crl.get())));
    result->valid_from = std::max(result->valid_from, last);
    if (const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get())) {
      ASSIGN_OR_RETURN(absl::Time until, ossl::Asn1TimeToAbsl(next));
      result->valid_until = std::min(result->valid_until, until);
    }
  }
  return std::shared_ptr<const PckChain>(std::move(result));
}

absl::Status CheckWindow(absl::Time issue, absl::Time next, absl::Time now, absl::string_view name,
                         CheckLog& L) {
  bool ok = issue <= now && now <= next;
  return L.Expect(
      ok, name,
      absl::StrCat(
          "issueDate ", FormatRfc3339(issue), ", nextUpdate ", FormatRfc3339(next),
          ok ? ", current at " : (now > next ? ": stale (expired) at " : ": not yet issued at "),
          FormatRfc3339(now)));
}

bool Accepted(const std::vector<std::string>& accepted, const std::string& status) {
  return std::find(accepted.begin(), accepted.end(), status) != accepted.end();
}

absl::StatusOr<std::shared_ptr<const SignedCollateral>> VerifyCollateralSignatures(
    const Collateral& c, const Options& o, CheckLog& L) {
  ASSIGN_OR_RETURN(auto anchors, Anchors(o));
  const absl::Time now = o.Now();
  auto result = std::make_shared<SignedCollateral>();
  ASSIGN_OR_RETURN(auto tcb_doc, ExtractSignedObject(c.tcb_info_json, "tcbInfo"));
  RETURN_IF_ERROR(VerifySignedCollateral(tcb_doc, c.tcb_signing_chain_der, anchors, now,
                                         "tdx.collateral.tcb_info", L));
  ASSIGN_OR_RETURN(result->tcb_info, ParseTcbInfo(tcb_doc.raw));
  if (c.qe_identity_json) {
    ASSIGN_OR_RETURN(auto qe_doc, ExtractSignedObject(*c.qe_identity_json, "enclaveIdentity"));
    RETURN_IF_ERROR(VerifySignedCollateral(qe_doc, c.tcb_signing_chain_der, anchors, now,
                                           "tdx.collateral.qe_identity", L));
    ASSIGN_OR_RETURN(result->qe_identity, ParseQeIdentity(qe_doc.raw));
  }
  for (const auto& der : c.tcb_signing_chain_der) {
    ASSIGN_OR_RETURN(auto cert, ossl::ParseDerCertificate(der, "TCB signing chain"));
    ASSIGN_OR_RETURN(absl::Time from, ossl::Asn1TimeToAbsl(X509_get0_notBefore(cert.get())));
    ASSIGN_OR_RETURN(absl::Time until, ossl::Asn1TimeToAbsl(X509_get0_notAfter(cert.get())));
    result->valid_from = std::max(result->valid_from, from);
    result->valid_until = std::min(result->valid_until, until);
  }
  return std::shared_ptr<const SignedCollateral>(std::move(result));
}

absl::Status EvaluateCollateral(const Options& o, VerifiedQuote& out, CheckLog& L) {
  if (!o.collateral) {
    return L.Expect(o.policy.skip_tcb, "tdx.tcb",
                    o.policy.skip_tcb
                        ? "TCB not evaluated (--skip-tcb)"
                        : "TCB status not evaluated: no collateral given (--collateral), and "
                          "--skip-tcb was not given");
  }
  const Collateral& c = *o.collateral;
  const absl::Time now = o.Now();
  // Signatures (reused from the cache while the signer is valid); windows are checked every time.
  std::vector<uint8_t> key;
  std::shared_ptr<const SignedCollateral> docs;
  if (o.cache) {
    std::vector<std::string_view> parts = {
        c.tcb_info_json, c.qe_identity_json ? std::string_view(*c.qe_identity_json) : "-"};
    for (const auto& der : c.tcb_signing_chain_der) {
      parts.emplace_back(reinterpret_cast<const char*>(der.data()), der.size());
    }
    key = CacheKey(parts, o);
    docs = o.cache->impl().FindCollateral(key, now);
  }
  if (docs) {
    L.Pass("tdx.collateral.tcb_info",
           "collateral signatures verified before, signer still valid at " + FormatRfc3339(now));
  } else {
    ASSIGN_OR_RETURN(docs, VerifyCollateralSignatures(c, o, L));
    if (o.cache) o.cache->impl().StoreCollateral(key, docs);
  }
  const TcbInfo& info = docs->tcb_info;
  RETURN_IF_ERROR(
      CheckWindow(info.issue_date, info.next_update, now, "tdx.collateral.tcb_info.validity", L));
  bool same_platform = info.fmspc == out.pck.fmspc && info.pce_id == out.pck.pce_id;
  RETURN_IF_ERROR(L.Expect(
      same_platform, "tdx.collateral.fmspc",
      absl::StrCat("TCB info FMSPC ", HexEncode(info.fmspc), " PCE-ID ", HexEncode(info.pce_id),
                   same_platform ? " match" : " but the PCK certificate says FMSPC ",
                   same_platform ? ""
                                 : absl::StrCat(HexEncode(out.pck.fmspc), " PCE-ID ",
                                                HexEncode(out.pck.pce_id)))));
  TcbResult tcb =
      EvaluateTcb(info, out.pck.tcb_components, out.pck.pcesvn, out.quote.body.tee_tcb_svn);
  out.tcb_status = tcb.status;
  out.advisory_ids = tcb.advisories;
  out.tdx_module_status = tcb.module_status;

  if (docs->qe_identity) {
    const QeIdentity& qe = *docs->qe_identity;
    RETURN_IF_ERROR(
        CheckWindow(qe.issue_date, qe.next_update, now, "tdx.collateral.qe_identity.validity", L));
    ASSIGN_OR_RETURN(out.qe_tcb_status, EvaluateQeIdentity(qe, out.quote.qe_report, L));
  }
  absl::Status first;
  auto note = [&first](absl::Status s) {
    if (first.ok()) first = std::move(s);
  };
  std::string accepted = absl::StrJoin(o.accepted_tcb_statuses, ",");
  note(L.Expect(Accepted(o.accepted_tcb_statuses, tcb.status), "tdx.tcb",
                absl::StrCat("TCB level status ", tcb.status,
                             tcb.advisories.empty()
                                 ? ""
                                 : absl::StrCat(" (", absl::StrJoin(tcb.advisories, ", "), ")"),
                             "; accepted: ", accepted)));
  if (tcb.module_status) {
    note(L.Expect(Accepted(o.accepted_tcb_statuses, *tcb.module_status), "tdx.tcb.module",
                  absl::StrCat("TDX module ", *tcb.module_id, " status ", *tcb.module_status,
                               "; accepted: ", accepted)));
  }
  note(L.Expect(
      o.policy.skip_tcb || Accepted(o.accepted_tcb_statuses, out.qe_tcb_status), "tdx.qe.tcb",
      absl::StrCat("QE TCB status ", out.qe_tcb_status,
                   c.qe_identity_json ? "" : " (no QE identity given)", "; accepted: ", accepted)));
  return first;
}

}  // namespace

absl::StatusOr<VerifiedQuote> VerifyQuote(std::span<const uint8_t> bytes, const Options& o,
                                          CheckLog* log_ptr) {
  CheckLog local;
  CheckLog& L = log_ptr ? *log_ptr : local;
  VerifiedQuote out;
  ASSIGN_OR_RETURN(out.quote, ParseQuote(bytes));
  const Quote& q = out.quote;

  // Cheap binding checks first.
  std::vector<uint8_t> bound(q.attestation_key.begin(), q.attestation_key.end());
  bound.insert(bound.end(), q.qe_auth_data.begin(), q.qe_auth_data.end());
  std::vector<uint8_t> h = ossl::Sha256(bound);
  bool head = std::equal(h.begin(), h.end(), q.qe_report.report_data.begin());
  bool tail = std::all_of(q.qe_report.report_data.begin() + 32, q.qe_report.report_data.end(),
                          [](uint8_t b) { return b == 0; });
  RETURN_IF_ERROR(L.Expect(
      head && tail, "tdx.qe.binding",
      head && tail
          ? "QE report data = SHA-256(attestation key || QE auth data) || zeros"
          : absl::StrCat("QE report data ", HexEncode(q.qe_report.report_data),
                         " but SHA-256(attestation key || QE auth data) is ", HexEncode(h))));

  // PCK chain (reused from the cache while its window holds).
  std::vector<uint8_t> chain_key;
  std::shared_ptr<const PckChain> pck;
  if (o.cache) {
    chain_key = CacheKey({q.pck_chain_pem}, o);
    pck = o.cache->impl().FindChain(chain_key, o.Now());
  }
  if (pck) {
    L.Pass("tdx.pck.chain", "PCK chain verified before, still valid at " + FormatRfc3339(o.Now()));
  } else {
    ASSIGN_OR_RETURN(pck, VerifyPckChain(q, o, L));
    if (o.cache) o.cache->impl().StoreChain(chain_key, pck);
  }
  out.pck = pck->extensions;
  EVP_PKEY* pck_key = pck->key.get();
  ASSIGN_OR_RETURN(bool qe_ok, VerifyP256({}, pck_key, q.qe_report_signature, q.qe_report.raw));
  RETURN_IF_ERROR(L.Expect(qe_ok, "tdx.qe.signature",
                           qe_ok ? "QE report signature verifies with the PCK certificate"
                                 : "QE report signature does not verify with the PCK certificate"));
  ASSIGN_OR_RETURN(bool quote_ok,
                   VerifyP256(q.attestation_key, nullptr, q.signature, q.signed_region));
  RETURN_IF_ERROR(L.Expect(quote_ok, "tdx.quote.signature",
                           quote_ok
                               ? "ECDSA P-256 quote signature verifies with the attestation key"
                               : "the quote signature over header and TD report does not verify "
                                 "with the attestation key"));

  RETURN_IF_ERROR(EvaluateCollateral(o, out, L));
  if (o.ccel_table.has_value() != o.ccel_log.has_value()) {
    return absl::InvalidArgumentError("the CCEL needs both its ACPI table and its log");
  }
  if (o.ccel_table) {
    ASSIGN_OR_RETURN(CcelTable table, ParseCcelTable(*o.ccel_table));
    ASSIGN_OR_RETURN(CcelReplay replay, ReplayCcel(table, *o.ccel_log));
    out.ccel_events = replay.log.events.size();
    RETURN_IF_ERROR(CheckCcelAgainstQuote(replay, q.body, L));
  }
  TdAttributes attrs = DecodeTdAttributes(q.body.td_attributes);
  absl::Status first;
  auto note = [&first](absl::Status s) {
    if (first.ok()) first = std::move(s);
  };
  note(L.Expect(!attrs.debug || o.policy.allow_debug, "tdx.td.debug",
                !attrs.debug ? "TD attributes: DEBUG=0"
                : o.policy.allow_debug
                    ? "TD attributes: DEBUG=1, allowed by --allow-debug"
                    : absl::StrFormat("TD attributes 0x%016x have DEBUG=1; debug TDs are rejected "
                                      "(--allow-debug accepts them)",
                                      q.body.td_attributes)));
  note(ExpectBytes(o.policy.mrtd, q.body.mrtd, "mrtd", L));
  note(ExpectBytes(o.policy.mrconfigid, q.body.mrconfigid, "mrconfigid", L));
  note(ExpectBytes(o.policy.mrowner, q.body.mrowner, "mrowner", L));
  note(ExpectBytes(o.policy.report_data, q.body.report_data, "report_data", L));
  for (const auto& [i, want] : o.policy.rtmr) {
    if (i < 0 || i > 3) return absl::InvalidArgumentError("RTMR index must be 0-3");
    note(ExpectBytes(want, q.body.rtmr[static_cast<size_t>(i)], absl::StrCat("rtmr", i), L));
  }
  RETURN_IF_ERROR(first);
  return out;
}

}  // namespace attest::tdx
