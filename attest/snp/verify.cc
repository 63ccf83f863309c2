#include "attest/snp/verify.h"

#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "attest/encoding.h"
#include "attest/snp/amd_cert.h"
#include "attest/snp/trust_roots.h"
#include "attest/status.h"
#include "common/openssl_util.h"
#include "snp/amd_cert_internal.h"

namespace attest::snp {
namespace {

constexpr size_t kMaxChainCertificates = 2;  // ASK/ASVK, ARK
constexpr size_t kMaxCachedChains = 256;

struct Anchor {
  ossl::X509Ptr cert;
  std::vector<uint8_t> der;
  std::string sha256;
};

// A verified VCEK/VLEK → ASK/ASVK → ARK chain, reusable while `now` is inside its window.
struct VerifiedChain {
  ossl::EvpPkeyPtr vek_key;
  AmdKeyExtensions ext;
  Product product = Product::kUnknown;
  absl::Time valid_from = absl::InfinitePast();
  absl::Time valid_until = absl::InfiniteFuture();
  std::string detail;
};

std::string Short(absl::string_view hex) { return std::string(hex.substr(0, 16)) + "…"; }

std::string CertLabel(const X509* cert) {
  return "CN=" + ossl::CommonName(X509_get_subject_name(cert));
}

bool IsSelfSigned(X509* cert) { return X509_check_issued(cert, cert) == X509_V_OK; }

// "SEV-Milan" → Milan (VCEK issuer), "SEV-VLEK-Genoa" → Genoa (VLEK issuer), "ARK-Turin" → Turin.
Product ProductFromCn(absl::string_view cn, absl::string_view prefix) {
  if (cn.substr(0, prefix.size()) != prefix) return Product::kUnknown;
  return ProductFromName(cn.substr(prefix.size()));
}

std::string IntermediatePrefix(SigningKey kind) {
  return kind == SigningKey::kVlek ? "SEV-VLEK-" : "SEV-";
}

absl::Status CheckExpectedSize(const std::optional<std::vector<uint8_t>>& v, size_t size,
                               absl::string_view name) {
  if (v && v->size() != size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("expected %s must be %u bytes (%u hex digits), got %u bytes", name, size,
                        2 * size, v->size()));
  }
  return absl::OkStatus();
}

absl::Status ValidatePolicy(const Policy& p) {
  RETURN_IF_ERROR(CheckExpectedSize(p.measurement, 48, "measurement"));
  RETURN_IF_ERROR(CheckExpectedSize(p.report_data, 64, "report_data"));
  RETURN_IF_ERROR(CheckExpectedSize(p.host_data, 32, "host_data"));
  RETURN_IF_ERROR(CheckExpectedSize(p.id_key_digest, 48, "id_key_digest"));
  RETURN_IF_ERROR(CheckExpectedSize(p.family_id, 16, "family_id"));
  RETURN_IF_ERROR(CheckExpectedSize(p.image_id, 16, "image_id"));
  RETURN_IF_ERROR(CheckExpectedSize(p.chip_id, 64, "chip_id"));
  return absl::OkStatus();
}

absl::Status ValidateCertificateSizes(const Certificates& certs) {
  if (certs.vek_der.empty()) {
    return absl::InvalidArgumentError("no VCEK/VLEK certificate given");
  }
  if (certs.vek_der.size() > kMaxVekCertificateSize) {
    return absl::InvalidArgumentError(
        absl::StrFormat("VCEK/VLEK certificate: %u bytes, over the %u-byte limit",
                        certs.vek_der.size(), kMaxVekCertificateSize));
  }
  if (certs.chain_der.size() > kMaxChainCertificates) {
    return absl::InvalidArgumentError(
        absl::StrFormat("certificate chain: %u certificates, at most %u (ASK/ASVK, ARK)",
                        certs.chain_der.size(), kMaxChainCertificates));
  }
  for (const auto& der : certs.chain_der) {
    if (der.size() > kMaxVekCertificateSize) {
      return absl::InvalidArgumentError("certificate chain: a certificate is over the size limit");
    }
  }
  return absl::OkStatus();
}

std::string DescribeTime(absl::Time t) { return FormatRfc3339(t); }

std::string Validity(const X509* cert) {
  auto from = ossl::Asn1TimeToAbsl(X509_get0_notBefore(cert));
  auto until = ossl::Asn1TimeToAbsl(X509_get0_notAfter(cert));
  if (!from.ok() || !until.ok()) return "validity unreadable";
  return absl::StrCat("valid ", DescribeTime(*from), " to ", DescribeTime(*until));
}

// True if the report's ECDSA P-384/SHA-384 signature over [0, 0x2A0) verifies with `key`.
absl::StatusOr<bool> ReportSignatureVerifies(EVP_PKEY* key, const Report& report) {
  ASSIGN_OR_RETURN(std::vector<uint8_t> der, SignatureToDer(report));
  ossl::EvpMdCtxPtr md(EVP_MD_CTX_new());
  bool ok = md && EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha384(), nullptr, key) == 1 &&
            EVP_DigestVerify(md.get(), der.data(), der.size(), report.signed_region.data(),
                             report.signed_region.size()) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace

struct Verifier::Impl {
  std::vector<Anchor> anchors;
  ossl::X509StorePtr store;  // the anchors; built once, shared by every verification
  // Known ASKs/ASVKs, parsed once: a chain that comes with the evidence is almost always one of
  // these (AMD serves one cert_chain per product), and parsing a certificate costs ~80 us.
  struct Intermediate {
    ossl::X509Ptr cert;
    std::vector<uint8_t> der;
  };
  std::vector<Intermediate> intermediates;
  std::vector<ossl::X509CrlPtr> crls;
  bool builtin_anchors = false;
  bool cache_chains = true;

  mutable std::mutex mu;
  mutable std::map<std::vector<uint8_t>, std::shared_ptr<const VerifiedChain>> cache;

  const Anchor* FindAnchor(std::span<const uint8_t> der) const {
    for (const Anchor& a : anchors) {
      if (std::equal(a.der.begin(), a.der.end(), der.begin(), der.end())) return &a;
    }
    return nullptr;
  }

  std::string AnchorList() const {
    std::string out;
    for (const Anchor& a : anchors) {
      absl::StrAppend(&out, out.empty() ? "" : ", ", CertLabel(a.cert.get()), " sha256 ",
                      Short(a.sha256));
    }
    return out;
  }

  absl::StatusOr<std::shared_ptr<const VerifiedChain>> VerifyChain(
      const Certificates& certs, X509* vek, const AmdKeyExtensions& ext, SigningKey kind,
      Product product, absl::Time now, CheckLog& log) const;
  absl::Status CheckCrls(X509* intermediate, X509* ark, absl::Time now, VerifiedChain& chain,
                         CheckLog& log) const;
};

Verifier::Verifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Verifier::~Verifier() = default;

absl::StatusOr<std::unique_ptr<Verifier>> Verifier::Create(const VerifierConfig& config) {
  auto impl = std::make_unique<Impl>();
  impl->cache_chains = config.cache_chains;
  if (config.trust_anchors_der.empty()) {
    impl->builtin_anchors = true;
    for (Product p : {Product::kMilan, Product::kGenoa, Product::kTurin}) {
      ASSIGN_OR_RETURN(AmdRootCertificates roots, BuiltinAmdRoots(p));
      ASSIGN_OR_RETURN(auto ark, ossl::ParseDerCertificate(roots.ark_der, "built-in ARK"));
      impl->anchors.push_back(
          Anchor{std::move(ark), roots.ark_der, HexEncode(ossl::Sha256(roots.ark_der))});
      if (config.intermediates_der.empty()) {
        for (const auto* der : {&roots.ask_der, &roots.asvk_der}) {
          ASSIGN_OR_RETURN(auto cert, ossl::ParseDerCertificate(*der, "built-in ASK/ASVK"));
          impl->intermediates.push_back({std::move(cert), *der});
        }
      }
    }
  } else {
    for (const auto& der : config.trust_anchors_der) {
      ASSIGN_OR_RETURN(auto cert, ossl::ParseDerCertificate(der, "trust anchor"));
      ossl::EvpPkeyPtr key(X509_get_pubkey(cert.get()));
      if (!IsSelfSigned(cert.get()) || !key || X509_verify(cert.get(), key.get()) != 1) {
        ERR_clear_error();
        return absl::InvalidArgumentError(absl::StrCat("trust anchor ", CertLabel(cert.get()),
                                                       " is not a self-signed root certificate"));
      }
      impl->anchors.push_back(Anchor{std::move(cert), der, HexEncode(ossl::Sha256(der))});
    }
  }
  for (const auto& der : config.intermediates_der) {
    ASSIGN_OR_RETURN(auto cert, ossl::ParseDerCertificate(der, "intermediate certificate"));
    impl->intermediates.push_back({std::move(cert), der});
  }
  for (const auto& der : config.crls_der) {
    ASSIGN_OR_RETURN(auto crl, ossl::ParseDerCrl(der, "CRL"));
    impl->crls.push_back(std::move(crl));
  }
  impl->store.reset(X509_STORE_new());
  if (!impl->store) return absl::ResourceExhaustedError("X509_STORE_new failed");
  for (const Anchor& a : impl->anchors) X509_STORE_add_cert(impl->store.get(), a.cert.get());
  return std::unique_ptr<Verifier>(new Verifier(std::move(impl)));
}

size_t Verifier::cached_chains() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->cache.size();
}

absl::Status Verifier::Impl::CheckCrls(X509* intermediate, X509* ark, absl::Time now,
                                       VerifiedChain& chain, CheckLog& log) const {
  if (crls.empty()) return absl::OkStatus();
  const X509_NAME* ark_name = X509_get_subject_name(ark);
  X509_CRL* crl = nullptr;
  for (const auto& c : crls) {
    if (X509_NAME_cmp(X509_CRL_get_issuer(c.get()), ark_name) == 0) crl = c.get();
  }
  if (crl == nullptr) {
    return log.Fail("snp.crl", absl::StrFormat("none of the %u given CRLs is issued by %s",
                                               crls.size(), CertLabel(ark)));
  }
  ossl::EvpPkeyPtr ark_key(X509_get_pubkey(ark));
  if (!ark_key || X509_CRL_verify(crl, ark_key.get()) != 1) {
    ERR_clear_error();
    return log.Fail("snp.crl", absl::StrCat("CRL signature does not verify with ", CertLabel(ark)));
  }
  auto this_update = ossl::Asn1TimeToAbsl(X509_CRL_get0_lastUpdate(crl));
  if (!this_update.ok() || *this_update > now) {
    return log.Fail("snp.crl", absl::StrCat("CRL thisUpdate is after the verification time ",
                                            DescribeTime(now)));
  }
  chain.valid_from = std::max(chain.valid_from, *this_update);
  if (const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl)) {
    auto next_update = ossl::Asn1TimeToAbsl(next);
    if (!next_update.ok() || *next_update < now) {
      return log.Fail("snp.crl",
                      absl::StrCat("CRL from ", CertLabel(ark), " expired (nextUpdate ",
                                   next_update.ok() ? DescribeTime(*next_update) : "unreadable",
                                   ", verification time ", DescribeTime(now), ")"));
    }
    chain.valid_until = std::min(chain.valid_until, *next_update);
  }
  X509_REVOKED* revoked = nullptr;
  if (X509_CRL_get0_by_cert(crl, &revoked, intermediate) == 1) {
    ossl::BnPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(intermediate), nullptr));
    char* hex = serial ? BN_bn2hex(serial.get()) : nullptr;
    std::string detail = absl::StrCat(CertLabel(intermediate), " serial 0x", hex ? hex : "?",
                                      " is revoked by the CRL of ", CertLabel(ark));
    OPENSSL_free(hex);
    return log.Fail("snp.crl", detail);
  }
  log.Pass("snp.crl",
           absl::StrCat(CertLabel(intermediate), " is not revoked by the CRL of ", CertLabel(ark)));
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const VerifiedChain>> Verifier::Impl::VerifyChain(
    const Certificates& certs, X509* vek, const AmdKeyExtensions& ext, SigningKey kind,
    Product product, absl::Time now, CheckLog& log) const {
  auto chain = std::make_shared<VerifiedChain>();
  chain->ext = ext;
  chain->product = product;
  chain->vek_key.reset(X509_get_pubkey(vek));
  char group[64] = {};
  size_t group_len = 0;
  bool p384 =
      chain->vek_key && EVP_PKEY_get_base_id(chain->vek_key.get()) == EVP_PKEY_EC &&
      EVP_PKEY_get_group_name(chain->vek_key.get(), group, sizeof(group), &group_len) == 1 &&
      absl::string_view(group, group_len) == "secp384r1";
  ERR_clear_error();
  RETURN_IF_ERROR(
      log.Expect(p384, "snp.vek.key",
                 p384 ? "ECDSA P-384 public key"
                      : absl::StrCat("the certificate key is not ECDSA P-384 (",
                                     group_len ? std::string(group, group_len) : "not EC", ")")));

  // A chain that comes with the evidence is positional, as AMD KDS serves it: the ASK or ASVK,
  // then optionally the ARK, which counts only if it is byte-equal to a root we already trust.
  ossl::StackOfX509Ptr untrusted(sk_X509_new_null());
  X509* given_intermediate = nullptr;
  ossl::X509Ptr parsed_intermediate;
  if (!certs.chain_der.empty()) {
    const auto& der = certs.chain_der[0];
    for (const Intermediate& known : intermediates) {
      if (std::equal(known.der.begin(), known.der.end(), der.begin(), der.end())) {
        given_intermediate = known.cert.get();
      }
    }
    if (given_intermediate == nullptr) {
      ASSIGN_OR_RETURN(parsed_intermediate,
                       ossl::ParseDerCertificate(der, "chain certificate (ASK/ASVK)"));
      given_intermediate = parsed_intermediate.get();
    }
    std::string cn = ossl::CommonName(X509_get_subject_name(given_intermediate));
    Product chain_product = ProductFromCn(cn, IntermediatePrefix(kind));
    if (chain_product == Product::kUnknown) {
      return log.Fail("snp.chain",
                      absl::StrFormat("a %s is issued by %s%s, but the chain's first "
                                      "certificate is CN=%s",
                                      kind == SigningKey::kVlek ? "VLEK" : "VCEK",
                                      IntermediatePrefix(kind), ProductName(product), cn));
    }
    if (chain_product != product) {
      return log.Fail("snp.product",
                      absl::StrFormat("products disagree: report and certificate say %s, but the "
                                      "chain is for %s (CN=%s)",
                                      ProductName(product), ProductName(chain_product), cn));
    }
    if (certs.chain_der.size() == 2) {
      const auto& root_der = certs.chain_der[1];
      const Anchor* anchor = FindAnchor(root_der);
      if (anchor == nullptr) {
        ASSIGN_OR_RETURN(auto root, ossl::ParseDerCertificate(root_der, "chain certificate (ARK)"));
        return log.Fail(
            "snp.chain.anchor",
            absl::StrCat("the chain's root ", CertLabel(root.get()), " (sha256 ",
                         Short(HexEncode(ossl::Sha256(root_der))),
                         ") is not a trusted root; trusted: ", AnchorList(),
                         builtin_anchors ? " (pass --trust-anchor to trust another)" : ""));
      }
      log.Pass("snp.chain.anchor",
               absl::StrCat("the chain's root ", CertLabel(anchor->cert.get()),
                            " is trusted (sha256 ", Short(anchor->sha256), ")"));
    }
    sk_X509_push(untrusted.get(), given_intermediate);
  } else {
    if (intermediates.empty()) {
      return absl::InvalidArgumentError(
          "no ASK/ASVK certificate: with a custom trust anchor the chain must be given (--chain)");
    }
    for (const Intermediate& known : intermediates) sk_X509_push(untrusted.get(), known.cert.get());
  }

  ossl::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), vek, untrusted.get()) != 1) {
    return absl::ResourceExhaustedError("X509_STORE_CTX_init failed");
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, ossl::ToTimeT(now));
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    int depth = X509_STORE_CTX_get_error_depth(ctx.get());
    X509* current = X509_STORE_CTX_get_current_cert(ctx.get());
    ERR_clear_error();
    std::string where = current ? absl::StrCat(CertLabel(current), ", ", Validity(current))
                                : std::string("no certificate");
    return log.Fail("snp.chain", absl::StrFormat("%s at depth %d (%s; verification time %s)",
                                                 X509_verify_cert_error_string(err), depth, where,
                                                 DescribeTime(now)));
  }
  STACK_OF(X509)* built = X509_STORE_CTX_get0_chain(ctx.get());
  if (sk_X509_num(built) != 3) {
    return log.Fail("snp.chain", absl::StrFormat("chain has %d certificates; AMD chains are "
                                                 "VCEK/VLEK, ASK/ASVK, ARK",
                                                 sk_X509_num(built)));
  }
  X509* intermediate = sk_X509_value(built, 1);
  X509* ark = sk_X509_value(built, 2);
  if (given_intermediate != nullptr && X509_cmp(given_intermediate, intermediate) != 0) {
    return log.Fail("snp.chain",
                    absl::StrCat("the chain's first certificate ", CertLabel(given_intermediate),
                                 " is not the issuer of the ", SigningKeyName(kind)));
  }
  std::string inter_cn = ossl::CommonName(X509_get_subject_name(intermediate));
  std::string ark_cn = ossl::CommonName(X509_get_subject_name(ark));
  Product inter_product = ProductFromCn(inter_cn, IntermediatePrefix(kind));
  Product ark_product = ProductFromCn(ark_cn, "ARK-");
  if (inter_product != product || ark_product != product) {
    return log.Fail("snp.product",
                    absl::StrFormat("report and certificate say %s but the chain is CN=%s, CN=%s "
                                    "(a %s must be issued by %s%s)",
                                    ProductName(product), inter_cn, ark_cn, SigningKeyName(kind),
                                    IntermediatePrefix(kind), ProductName(product)));
  }
  for (int i = 0; i < 3; ++i) {
    X509* c = sk_X509_value(built, i);
    auto from = ossl::Asn1TimeToAbsl(X509_get0_notBefore(c));
    auto until = ossl::Asn1TimeToAbsl(X509_get0_notAfter(c));
    if (!from.ok() || !until.ok())
      return absl::InvalidArgumentError("certificate validity unreadable");
    chain->valid_from = std::max(chain->valid_from, *from);
    chain->valid_until = std::min(chain->valid_until, *until);
  }
  const Anchor* anchor = nullptr;
  for (const Anchor& a : anchors) {
    if (X509_cmp(a.cert.get(), ark) == 0) anchor = &a;
  }
  chain->detail = absl::StrCat(CertLabel(vek), " <- CN=", inter_cn, " <- CN=", ark_cn, " (sha256 ",
                               anchor ? Short(anchor->sha256) : "?", ")");
  log.Pass("snp.chain", absl::StrCat(chain->detail, ", valid at ", DescribeTime(now)));
  RETURN_IF_ERROR(CheckCrls(intermediate, ark, now, *chain, log));
  return std::shared_ptr<const VerifiedChain>(std::move(chain));
}

namespace {

std::vector<uint8_t> CacheKey(const Certificates& certs) {
  ossl::EvpMdCtxPtr md(EVP_MD_CTX_new());
  std::vector<uint8_t> out(32);
  EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr);
  auto add = [&](const std::vector<uint8_t>& der) {
    uint64_t n = der.size();
    EVP_DigestUpdate(md.get(), &n, sizeof(n));
    EVP_DigestUpdate(md.get(), der.data(), der.size());
  };
  add(certs.vek_der);
  for (const auto& der : certs.chain_der) add(der);
  EVP_DigestFinal_ex(md.get(), out.data(), nullptr);
  return out;
}

absl::Status CheckConsistency(const Report& report, const AmdKeyExtensions& ext, Product product,
                              SigningKey kind, const TcbVersion& reported, CheckLog& log) {
  // TCB: the certificate was issued for exactly the TCB the report claims.
  struct Component {
    absl::string_view name;
    int reported;
    std::optional<uint8_t> cert;
  };
  std::vector<Component> components = {{"bl", reported.bl, ext.bl_spl},
                                       {"tee", reported.tee, ext.tee_spl},
                                       {"snp", reported.snp, ext.snp_spl},
                                       {"ucode", reported.ucode, ext.ucode_spl}};
  if (product == Product::kTurin)
    components.push_back({"fmc", reported.fmc.value_or(0), ext.fmc_spl});
  std::string name = kind == SigningKey::kVlek ? "VLEK" : "VCEK";
  for (const Component& c : components) {
    if (!c.cert) {
      return log.Fail("snp.tcb", absl::StrCat(name, " has no ", c.name, "SPL extension"));
    }
    if (*c.cert != c.reported) {
      return log.Fail("snp.tcb", absl::StrFormat("reported_tcb.%s=%d but %s %sSPL=%d", c.name,
                                                 c.reported, name, c.name, *c.cert));
    }
  }
  log.Pass("snp.tcb", absl::StrCat("reported_tcb ", TcbToString(reported), " equals the ", name,
                                   " TCB extensions"));

  // hwID: a VCEK belongs to one chip. VLEKs carry none; a guest may mask its chip id.
  if (kind == SigningKey::kVlek) {
    log.Pass("snp.hwid", "VLEK certificates carry no hwID; not compared");
  } else if (report.mask_chip_key) {
    log.Pass("snp.hwid", "the report masks CHIP_ID (MASK_CHIP_KEY=1); not compared");
  } else {
    if (!ext.hwid) return log.Fail("snp.hwid", "VCEK has no hwID extension");
    const auto& hwid = *ext.hwid;
    size_t want = product == Product::kTurin ? 8 : 64;
    if (hwid.size() != want) {
      return log.Fail("snp.hwid", absl::StrFormat("VCEK hwID is %u bytes; %s uses %u", hwid.size(),
                                                  ProductName(product), want));
    }
    bool same = std::equal(hwid.begin(), hwid.end(), report.chip_id.begin());
    RETURN_IF_ERROR(log.Expect(same, "snp.hwid",
                               same ? "VCEK hwID equals the report's chip_id"
                                    : absl::StrCat("chip_id ", Short(HexEncode(report.chip_id)),
                                                   " but VCEK hwID ", Short(HexEncode(hwid)))));
  }
  return absl::OkStatus();
}

absl::Status CheckPolicy(const VerifiedReport& v, const Policy& p, CheckLog& log) {
  const Report& r = v.report;
  absl::Status first;
  auto note = [&first](absl::Status s) {
    if (first.ok()) first = std::move(s);
  };
  note(log.Expect(
      !r.policy.debug || p.allow_debug, "snp.policy.debug",
      !r.policy.debug ? "DEBUG=0"
      : p.allow_debug
          ? absl::StrFormat("guest policy 0x%x has DEBUG=1, allowed by --allow-debug", r.policy.raw)
          : absl::StrFormat("guest policy 0x%x has DEBUG=1; debug guests are rejected "
                            "(--allow-debug accepts them)",
                            r.policy.raw)));
  if (p.max_vmpl) {
    note(log.Expect(r.vmpl <= *p.max_vmpl, "snp.policy.vmpl",
                    absl::StrFormat("VMPL %u, maximum allowed %u", r.vmpl, *p.max_vmpl)));
  }
  if (p.require_no_smt) {
    note(log.Expect(
        !r.platform_info.smt_enabled, "snp.policy.smt",
        absl::StrFormat("PLATFORM_INFO 0x%x has SMT_EN=%d; required 0 (guest policy SMT=%d)",
                        r.platform_info.raw, r.platform_info.smt_enabled, r.policy.smt)));
  }
  if (p.require_no_migration_agent) {
    note(log.Expect(!r.policy.migrate_ma, "snp.policy.migration_agent",
                    absl::StrFormat("guest policy 0x%x has MIGRATE_MA=%d; required 0", r.policy.raw,
                                    r.policy.migrate_ma)));
  }
  if (p.require_single_socket) {
    note(log.Expect(r.policy.single_socket, "snp.policy.single_socket",
                    absl::StrFormat("guest policy 0x%x has SINGLE_SOCKET=%d; required 1",
                                    r.policy.raw, r.policy.single_socket)));
  }
  auto min_tcb = [&](const std::optional<TcbVersion>& min, const TcbVersion& have,
                     absl::string_view field, absl::string_view check) {
    if (!min) return;
    if (min->fmc && v.product != Product::kTurin) {
      note(log.Fail(check, absl::StrCat("minimum TCB names an FMC component, but ",
                                        ProductName(v.product), " TCBs have none")));
      return;
    }
    std::string below = FirstTcbComponentBelow(have, *min);
    note(log.Expect(below.empty(), check,
                    below.empty()
                        ? absl::StrCat(field, " ", TcbToString(have), " >= ", TcbToString(*min))
                        : absl::StrCat(field, " ", below, " (have ", TcbToString(have),
                                       ", minimum ", TcbToString(*min), ")")));
  };
  min_tcb(p.min_tcb, v.reported_tcb, "reported_tcb", "snp.policy.min_tcb");
  min_tcb(p.min_committed_tcb, v.committed_tcb, "committed_tcb", "snp.policy.min_tcb_committed");
  min_tcb(p.min_launch_tcb, v.launch_tcb, "launch_tcb", "snp.policy.min_tcb_launch");

  auto expect = [&](const std::optional<std::vector<uint8_t>>& want, std::span<const uint8_t> have,
                    absl::string_view name) {
    if (!want) return;
    bool same = std::equal(have.begin(), have.end(), want->begin(), want->end());
    note(log.Expect(
        same, absl::StrCat("snp.expect.", name),
        same ? absl::StrCat(name, " ", HexEncode(have))
             : absl::StrCat(name, " ", HexEncode(have), " but expected ", HexEncode(*want))));
  };
  expect(p.measurement, r.measurement, "measurement");
  expect(p.report_data, r.report_data, "report_data");
  expect(p.host_data, r.host_data, "host_data");
  expect(p.id_key_digest, r.id_key_digest, "id_key_digest");
  expect(p.family_id, r.family_id, "family_id");
  expect(p.image_id, r.image_id, "image_id");
  expect(p.chip_id, r.chip_id, "chip_id");
  return first;
}

}  // namespace

absl::StatusOr<VerifiedReport> Verifier::Verify(std::span<const uint8_t> report_bytes,
                                                const Certificates& certs, const Options& options,
                                                CheckLog* log) const {
  ASSIGN_OR_RETURN(Report report, ParseReport(report_bytes));
  return Verify(report, certs, options, log);
}

absl::StatusOr<VerifiedReport> Verifier::Verify(const Report& report, const Certificates& certs,
                                                const Options& options, CheckLog* log) const {
  CheckLog local_log;
  CheckLog& L = log != nullptr ? *log : local_log;
  RETURN_IF_ERROR(ValidatePolicy(options.policy));
  RETURN_IF_ERROR(ValidateCertificateSizes(certs));
  const absl::Time now = options.Now();

  // A chain verified before is reused while `now` is inside its validity window.
  std::vector<uint8_t> key;
  std::shared_ptr<const VerifiedChain> cached;
  if (impl_->cache_chains) {
    key = CacheKey(certs);
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = impl_->cache.find(key);
    if (it != impl_->cache.end() && now >= it->second->valid_from &&
        now <= it->second->valid_until) {
      cached = it->second;
    }
  }
  ossl::X509Ptr vek;
  AmdKeyExtensions ext;
  if (cached) {
    ext = cached->ext;
  } else {
    ASSIGN_OR_RETURN(vek, ossl::ParseDerCertificate(certs.vek_der, "VCEK/VLEK certificate"));
    ASSIGN_OR_RETURN(ext, ExtractAmdKeyExtensions(vek.get()));
  }

  // Which key signed: the report says, and the certificate's subject must agree.
  SigningKey kind;
  if (ext.subject_cn == kVcekCommonName) {
    kind = SigningKey::kVcek;
  } else if (ext.subject_cn == kVlekCommonName) {
    kind = SigningKey::kVlek;
  } else {
    return L.Fail("snp.signing_key", absl::StrCat("certificate subject CN=", ext.subject_cn,
                                                  " is neither SEV-VCEK nor SEV-VLEK"));
  }
  if (report.signing_key == SigningKey::kNone) {
    return L.Fail("snp.signing_key", "the report is unsigned (SIGNING_KEY=7)");
  }
  RETURN_IF_ERROR(L.Expect(report.signing_key == kind, "snp.signing_key",
                           absl::StrCat("report SIGNING_KEY=", SigningKeyName(report.signing_key),
                                        ", certificate CN=", ext.subject_cn)));

  // Product: every source that names one must agree (the chain's names are checked with it).
  Product cert_product = ProductFromName(ext.product_name.value_or(""));
  Product cpu_product = report.cpuid_product();
  Product product = Product::kUnknown;
  std::string sources;
  bool agree = true;
  auto consider = [&](Product p, absl::string_view source) {
    if (p == Product::kUnknown) return;
    absl::StrAppend(&sources, sources.empty() ? "" : ", ", source, " ", ProductName(p));
    if (product == Product::kUnknown) product = p;
    if (p != product) agree = false;
  };
  consider(cert_product, "certificate productName");
  consider(cpu_product, "report CPUID");
  if (product == Product::kUnknown) {
    return L.Fail("snp.product", absl::StrCat("cannot tell the product: certificate productName '",
                                              ext.product_name.value_or(""), "', no CPUID in a v",
                                              report.version, " report"));
  }
  RETURN_IF_ERROR(L.Expect(agree, "snp.product",
                           agree ? absl::StrCat(ProductName(product), " (", sources, ")")
                                 : absl::StrCat("products disagree: ", sources)));

  VerifiedReport out;
  out.report = report;
  out.product = product;
  out.signer = kind;
  ASSIGN_OR_RETURN(out.reported_tcb, DecodeTcb(report.reported_tcb, product));
  ASSIGN_OR_RETURN(out.current_tcb, DecodeTcb(report.current_tcb, product));
  ASSIGN_OR_RETURN(out.committed_tcb, DecodeTcb(report.committed_tcb, product));
  ASSIGN_OR_RETURN(out.launch_tcb, DecodeTcb(report.launch_tcb, product));
  RETURN_IF_ERROR(CheckConsistency(report, ext, product, kind, out.reported_tcb, L));

  std::shared_ptr<const VerifiedChain> chain = cached;
  if (chain) {
    L.Pass("snp.chain",
           absl::StrCat(chain->detail, ", valid at ", DescribeTime(now), " (verified before)"));
  } else {
    ASSIGN_OR_RETURN(chain, impl_->VerifyChain(certs, vek.get(), ext, kind, product, now, L));
    if (impl_->cache_chains) {
      std::lock_guard<std::mutex> lock(impl_->mu);
      if (impl_->cache.size() >= kMaxCachedChains) impl_->cache.clear();
      impl_->cache[key] = chain;
    }
  }

  ASSIGN_OR_RETURN(bool signature_ok, ReportSignatureVerifies(chain->vek_key.get(), report));
  std::string signer_name = kind == SigningKey::kVlek ? "VLEK" : "VCEK";
  RETURN_IF_ERROR(L.Expect(
      signature_ok, "snp.signature",
      signature_ok ? absl::StrCat("ECDSA P-384/SHA-384 signature verifies with the ", signer_name)
                   : absl::StrCat("ECDSA P-384/SHA-384 signature over bytes [0, 0x2A0) does not "
                                  "verify with the ",
                                  signer_name, "'s key")));

  RETURN_IF_ERROR(CheckPolicy(out, options.policy, L));
  return out;
}

absl::StatusOr<std::vector<uint8_t>> SignatureToDer(const Report& report) {
  constexpr size_t kP384Bytes = 48;  // the high 24 bytes of each component are zero (ParseReport)
  // The report stores r and s little-endian.
  std::vector<uint8_t> r(report.signature_r.begin(), report.signature_r.begin() + kP384Bytes);
  std::vector<uint8_t> s(report.signature_s.begin(), report.signature_s.begin() + kP384Bytes);
  std::reverse(r.begin(), r.end());
  std::reverse(s.begin(), s.end());
  return ossl::EcdsaSignatureDer(r, s);
}

absl::StatusOr<VerifiedReport> VerifyReport(std::span<const uint8_t> report_bytes,
                                            const Certificates& certs, const Options& options,
                                            const VerifierConfig& config, CheckLog* log) {
  ASSIGN_OR_RETURN(auto verifier, Verifier::Create(config));
  return verifier->Verify(report_bytes, certs, options, log);
}

}  // namespace attest::snp
