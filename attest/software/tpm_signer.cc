#include "tpm_signer.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

#include <cstring>

#include "attest/encoding.h"
#include "attest/status.h"
#include "common/openssl_util.h"

namespace attest::testing {
namespace {

void PutLe(std::vector<uint8_t>& b, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

std::vector<uint8_t> BnBytes(const BIGNUM* bn, size_t size) {
  std::vector<uint8_t> out(size);
  BN_bn2binpad(bn, out.data(), static_cast<int>(size));
  return out;
}

}  // namespace

struct SoftwareTpmQuoter::Impl {
  Scheme scheme;
  uint16_t hash_alg;
  ossl::EvpPkeyPtr key;
};

SoftwareTpmQuoter::SoftwareTpmQuoter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SoftwareTpmQuoter::~SoftwareTpmQuoter() = default;

absl::StatusOr<std::unique_ptr<SoftwareTpmQuoter>> SoftwareTpmQuoter::Create(Scheme scheme,
                                                                             uint16_t hash_alg) {
  auto impl = std::make_unique<Impl>();
  impl->scheme = scheme;
  impl->hash_alg = hash_alg;
  TPMT_PUBLIC pub{};
  pub.nameAlg = TPM2_ALG_SHA256;
  // fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | restricted | sign
  pub.objectAttributes = 0x00050072;
  if (scheme == Scheme::kEcdsaP256) {
    impl->key.reset(EVP_EC_gen("P-256"));
    if (!impl->key) return absl::InternalError("EC keygen failed");
    pub.type = TPM2_ALG_ECC;
    pub.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    pub.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    pub.parameters.eccDetail.scheme.details.ecdsa.hashAlg = hash_alg;
    pub.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    pub.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    BIGNUM* x = nullptr;
    BIGNUM* y = nullptr;
    EVP_PKEY_get_bn_param(impl->key.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x);
    EVP_PKEY_get_bn_param(impl->key.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y);
    auto xb = BnBytes(x, 32), yb = BnBytes(y, 32);
    BN_free(x);
    BN_free(y);
    pub.unique.ecc.x.size = 32;
    std::memcpy(pub.unique.ecc.x.buffer, xb.data(), 32);
    pub.unique.ecc.y.size = 32;
    std::memcpy(pub.unique.ecc.y.buffer, yb.data(), 32);
  } else {
    impl->key.reset(EVP_RSA_gen(2048));
    if (!impl->key) return absl::InternalError("RSA keygen failed");
    pub.type = TPM2_ALG_RSA;
    pub.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
    pub.parameters.rsaDetail.scheme.scheme =
        scheme == Scheme::kRsapss ? TPM2_ALG_RSAPSS : TPM2_ALG_RSASSA;
    pub.parameters.rsaDetail.scheme.details.anySig.hashAlg = hash_alg;
    pub.parameters.rsaDetail.keyBits = 2048;
    pub.parameters.rsaDetail.exponent = 0;  // default 65537
    BIGNUM* n = nullptr;
    EVP_PKEY_get_bn_param(impl->key.get(), OSSL_PKEY_PARAM_RSA_N, &n);
    auto nb = BnBytes(n, 256);
    BN_free(n);
    pub.unique.rsa.size = 256;
    std::memcpy(pub.unique.rsa.buffer, nb.data(), 256);
  }
  std::vector<uint8_t> buf(sizeof(TPMT_PUBLIC));
  size_t offset = 0;
  if (Tss2_MU_TPMT_PUBLIC_Marshal(&pub, buf.data(), buf.size(), &offset) != TSS2_RC_SUCCESS) {
    return absl::InternalError("TPMT_PUBLIC marshal failed");
  }
  buf.resize(offset);
  auto out = std::unique_ptr<SoftwareTpmQuoter>(new SoftwareTpmQuoter(std::move(impl)));
  out->ak_public_ = std::move(buf);
  return out;
}

std::string SoftwareTpmQuoter::ak_pem() const {
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(bio.get(), impl_->key.get());
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);  // NOLINT
  return std::string(data, static_cast<size_t>(n));
}

absl::StatusOr<SoftwareTpmQuoter::SignedQuote> SoftwareTpmQuoter::Quote(
    const tpm::PcrBanks& pcrs, const std::vector<uint8_t>& nonce) const {
  TPMS_ATTEST a{};
  a.magic = TPM2_GENERATED_VALUE;
  a.type = TPM2_ST_ATTEST_QUOTE;
  a.qualifiedSigner.size = 0;
  if (nonce.size() > sizeof(a.extraData.buffer))
    return absl::InvalidArgumentError("nonce too long");
  a.extraData.size = static_cast<uint16_t>(nonce.size());
  if (!nonce.empty()) std::memcpy(a.extraData.buffer, nonce.data(), nonce.size());
  a.clockInfo.clock = 123456;
  a.clockInfo.safe = TPM2_YES;
  a.firmwareVersion = 0x2016051100162800ULL;
  ossl::EvpMdCtxPtr pcr_ctx(EVP_MD_CTX_new());
  const EVP_MD* md = impl_->hash_alg == tpm::kAlgSha1     ? EVP_sha1()
                     : impl_->hash_alg == tpm::kAlgSha384 ? EVP_sha384()
                                                          : EVP_sha256();
  EVP_DigestInit_ex(pcr_ctx.get(), md, nullptr);
  TPML_PCR_SELECTION& sel = a.attested.quote.pcrSelect;
  for (const auto& [alg, bank] : pcrs) {
    TPMS_PCR_SELECTION& s = sel.pcrSelections[sel.count++];
    s.hash = alg;
    s.sizeofSelect = 3;
    for (const auto& [pcr, value] : bank) {
      s.pcrSelect[pcr / 8] |= static_cast<uint8_t>(1u << (pcr % 8));
      EVP_DigestUpdate(pcr_ctx.get(), value.data(), value.size());
    }
  }
  unsigned int dlen = 0;
  EVP_DigestFinal_ex(pcr_ctx.get(), a.attested.quote.pcrDigest.buffer, &dlen);
  a.attested.quote.pcrDigest.size = static_cast<uint16_t>(dlen);
  SignedQuote out;
  out.attest.resize(sizeof(TPMS_ATTEST));
  size_t offset = 0;
  if (Tss2_MU_TPMS_ATTEST_Marshal(&a, out.attest.data(), out.attest.size(), &offset) !=
      TSS2_RC_SUCCESS) {
    return absl::InternalError("TPMS_ATTEST marshal failed");
  }
  out.attest.resize(offset);

  ossl::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, impl_->key.get()) != 1)
    return absl::InternalError("sign init");
  if (impl_->scheme == Scheme::kRsapss) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
  }
  size_t sig_len = 0;
  EVP_DigestSign(ctx.get(), nullptr, &sig_len, out.attest.data(), out.attest.size());
  std::vector<uint8_t> sig(sig_len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &sig_len, out.attest.data(), out.attest.size()) != 1) {
    return absl::InternalError("sign failed");
  }
  sig.resize(sig_len);
  TPMT_SIGNATURE ts{};
  if (impl_->scheme == Scheme::kEcdsaP256) {
    ts.sigAlg = TPM2_ALG_ECDSA;
    ts.signature.ecdsa.hash = impl_->hash_alg;
    const unsigned char* p = sig.data();
    ossl::EcdsaSigPtr e(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));  // NOLINT
    auto r = BnBytes(ECDSA_SIG_get0_r(e.get()), 32), s = BnBytes(ECDSA_SIG_get0_s(e.get()), 32);
    ts.signature.ecdsa.signatureR.size = 32;
    std::memcpy(ts.signature.ecdsa.signatureR.buffer, r.data(), 32);
    ts.signature.ecdsa.signatureS.size = 32;
    std::memcpy(ts.signature.ecdsa.signatureS.buffer, s.data(), 32);
  } else {
    ts.sigAlg = impl_->scheme == Scheme::kRsapss ? TPM2_ALG_RSAPSS : TPM2_ALG_RSASSA;
    ts.signature.rsassa.hash = impl_->hash_alg;
    ts.signature.rsassa.sig.size = static_cast<uint16_t>(sig.size());
    std::memcpy(ts.signature.rsassa.sig.buffer, sig.data(), sig.size());
  }
  out.signature.resize(sizeof(TPMT_SIGNATURE));
  offset = 0;
  if (Tss2_MU_TPMT_SIGNATURE_Marshal(&ts, out.signature.data(), out.signature.size(), &offset) !=
      TSS2_RC_SUCCESS) {
    return absl::InternalError("TPMT_SIGNATURE marshal failed");
  }
  out.signature.resize(offset);
  return out;
}

std::string RsaJwkSet(const std::string& kid, const tpm::AkPublicKey& ak) {
  BIGNUM* n = nullptr;
  BIGNUM* e = nullptr;
  EVP_PKEY_get_bn_param(ak.key.get(), OSSL_PKEY_PARAM_RSA_N, &n);
  EVP_PKEY_get_bn_param(ak.key.get(), OSSL_PKEY_PARAM_RSA_E, &e);
  auto b64url = [](const BIGNUM* bn) {
    std::vector<uint8_t> bytes(static_cast<size_t>(BN_num_bytes(bn)));
    BN_bn2bin(bn, bytes.data());
    return Base64UrlEncode(bytes);
  };
  std::string out = "{\"keys\":[{\"kid\":\"" + kid + "\",\"kty\":\"RSA\",\"n\":\"" + b64url(n) +
                    "\",\"e\":\"" + b64url(e) + "\"}],\"vm-configuration\":{}}";
  BN_free(n);
  BN_free(e);
  return out;
}

std::vector<uint8_t> BuildTcg2Log(const std::vector<uint16_t>& algs,
                                  const std::vector<TestEvent>& events) {
  std::vector<uint8_t> b;
  // Header: TCG_PCR_EVENT, EV_NO_ACTION, zero SHA-1 digest, TCG_EfiSpecIDEvent.
  std::vector<uint8_t> spec;
  const char sig[16] = "Spec ID Event03";
  spec.insert(spec.end(), sig, sig + 16);
  PutLe(spec, 0, 4);                      // platformClass
  spec.insert(spec.end(), {0, 2, 0, 2});  // minor, major, errata, uintnSize
  PutLe(spec, algs.size(), 4);
  for (uint16_t alg : algs) {
    PutLe(spec, alg, 2);
    PutLe(spec, tpm::HashAlgSize(alg), 2);
  }
  spec.push_back(0);  // vendorInfoSize
  PutLe(b, 0, 4);
  PutLe(b, 3, 4);
  b.insert(b.end(), 20, 0);
  PutLe(b, spec.size(), 4);
  b.insert(b.end(), spec.begin(), spec.end());
  for (const TestEvent& e : events) {
    PutLe(b, e.pcr, 4);
    PutLe(b, e.type, 4);
    PutLe(b, algs.size(), 4);
    for (uint16_t alg : algs) {
      PutLe(b, alg, 2);
      auto h = tpm::Hash(alg, e.data);
      b.insert(b.end(), h->begin(), h->end());
    }
    PutLe(b, e.data.size(), 4);
    b.insert(b.end(), e.data.begin(), e.data.end());
  }
  return b;
}

}  // namespace attest::testing
