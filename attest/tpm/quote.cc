#include "attest/tpm/quote.h"

#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "attest/encoding.h"
#include "attest/status.h"
#include "common/openssl_util.h"
#include "tpm/md_internal.h"

namespace attest::tpm {
namespace {

std::string SigAlgName(uint16_t alg) {
  switch (alg) {
    case kAlgRsassa:
      return "RSASSA";
    case kAlgRsapss:
      return "RSAPSS";
    case kAlgEcdsa:
      return "ECDSA";
    default:
      return absl::StrFormat("0x%04x", alg);
  }
}

}  // namespace

absl::StatusOr<Quote> ParseQuote(std::span<const uint8_t> bytes) {
  if (bytes.size() > kMaxQuoteSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "quote: %u bytes, over the %u-byte limit for a TPMS_ATTEST", bytes.size(), kMaxQuoteSize));
  }
  TPMS_ATTEST a{};
  size_t offset = 0;
  TSS2_RC rc = Tss2_MU_TPMS_ATTEST_Unmarshal(bytes.data(), bytes.size(), &offset, &a);
  if (rc != TSS2_RC_SUCCESS) {
    return absl::InvalidArgumentError(
        absl::StrFormat("quote: not a TPMS_ATTEST (unmarshal error 0x%x)", rc));
  }
  if (offset != bytes.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "quote: TPMS_ATTEST ends at byte %u but the input has %u", offset, bytes.size()));
  }
  Quote q;
  q.magic = a.magic;
  q.type = a.type;
  q.qualified_signer.assign(a.qualifiedSigner.name,
                            a.qualifiedSigner.name + a.qualifiedSigner.size);
  q.extra_data.assign(a.extraData.buffer, a.extraData.buffer + a.extraData.size);
  q.clock = a.clockInfo.clock;
  q.reset_count = a.clockInfo.resetCount;
  q.restart_count = a.clockInfo.restartCount;
  q.safe = a.clockInfo.safe == TPM2_YES;
  q.firmware_version = a.firmwareVersion;
  if (a.type == TPM2_ST_ATTEST_QUOTE) {
    const TPMS_QUOTE_INFO& info = a.attested.quote;
    for (uint32_t i = 0; i < info.pcrSelect.count; ++i) {
      const TPMS_PCR_SELECTION& s = info.pcrSelect.pcrSelections[i];
      PcrSelection sel;
      sel.hash_alg = s.hash;
      for (uint32_t byte = 0; byte < s.sizeofSelect; ++byte) {
        for (uint32_t bit = 0; bit < 8; ++bit) {
          if (s.pcrSelect[byte] & (1u << bit)) sel.pcrs.push_back(byte * 8 + bit);
        }
      }
      q.selections.push_back(std::move(sel));
    }
    q.pcr_digest.assign(info.pcrDigest.buffer, info.pcrDigest.buffer + info.pcrDigest.size);
  }
  q.raw.assign(bytes.begin(), bytes.end());
  return q;
}

absl::StatusOr<QuoteSignature> ParseQuoteSignature(std::span<const uint8_t> bytes,
                                                   SignatureFormat format, const AkPublicKey& ak) {
  if (bytes.size() > kMaxSignatureSize) {
    return absl::InvalidArgumentError(absl::StrFormat("signature: %u bytes, over the %u-byte limit",
                                                      bytes.size(), kMaxSignatureSize));
  }
  QuoteSignature out;
  if (format != SignatureFormat::kRaw) {
    TPMT_SIGNATURE sig{};
    size_t offset = 0;
    TSS2_RC rc = Tss2_MU_TPMT_SIGNATURE_Unmarshal(bytes.data(), bytes.size(), &offset, &sig);
    bool exact = rc == TSS2_RC_SUCCESS && offset == bytes.size();
    if (exact) {
      out.sig_alg = sig.sigAlg;
      switch (sig.sigAlg) {
        case TPM2_ALG_RSASSA:
        case TPM2_ALG_RSAPSS:
          out.hash_alg = sig.signature.rsassa.hash;
          out.rsa.assign(sig.signature.rsassa.sig.buffer,
                         sig.signature.rsassa.sig.buffer + sig.signature.rsassa.sig.size);
          return out;
        case TPM2_ALG_ECDSA: {
          out.hash_alg = sig.signature.ecdsa.hash;
          const auto& r = sig.signature.ecdsa.signatureR;
          const auto& s = sig.signature.ecdsa.signatureS;
          ASSIGN_OR_RETURN(out.ecdsa_der,
                           ossl::EcdsaSignatureDer(std::span<const uint8_t>(r.buffer, r.size),
                                                   std::span<const uint8_t>(s.buffer, s.size)));
          return out;
        }
        default:
          return absl::InvalidArgumentError(absl::StrCat(
              "signature: TPMT_SIGNATURE algorithm ", SigAlgName(sig.sigAlg), " is not supported"));
      }
    }
    if (format == SignatureFormat::kTpmt) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "signature: not a TPMT_SIGNATURE (unmarshal error 0x%x, %u of %u bytes used)", rc, offset,
          bytes.size()));
    }
  }
  // A bare RSASSA-PKCS1-v1_5 signature: exactly the modulus size.
  if (ak.type != kAlgRsa || bytes.size() * 8 != static_cast<size_t>(ak.bits)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "signature: %u bytes is neither a TPMT_SIGNATURE nor a raw signature of the %s AK",
        bytes.size(), ak.Describe()));
  }
  out.sig_alg = kAlgRsassa;
  out.hash_alg = ak.scheme_hash != kAlgNull ? ak.scheme_hash : kAlgSha256;
  out.rsa.assign(bytes.begin(), bytes.end());
  out.raw = true;
  return out;
}

absl::Status CheckPcrDigest(const Quote& quote, uint16_t digest_alg, const PcrBanks& pcrs,
                            CheckLog& log, PcrBanks* quoted) {
  const EVP_MD* md = TpmAlgMd(digest_alg);
  if (md == nullptr) {
    return log.Fail("tpm.pcrs.digest",
                    absl::StrCat("cannot compute a ", HashAlgName(digest_alg), " PCR digest"));
  }
  ossl::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_DigestInit_ex(ctx.get(), md, nullptr);
  PcrBanks selected;
  size_t count = 0;
  for (const PcrSelection& sel : quote.selections) {
    auto bank = pcrs.find(sel.hash_alg);
    size_t size = HashAlgSize(sel.hash_alg);
    for (uint32_t pcr : sel.pcrs) {
      if (bank == pcrs.end() || !bank->second.count(pcr)) {
        return log.Fail("tpm.pcrs.digest",
                        absl::StrFormat("the quote selects %s PCR %u but no value was given for it",
                                        HashAlgName(sel.hash_alg), pcr));
      }
      const auto& value = bank->second.at(pcr);
      if (size != 0 && value.size() != size) {
        return log.Fail("tpm.pcrs.digest",
                        absl::StrFormat("%s PCR %u value has %u bytes, expected %u",
                                        HashAlgName(sel.hash_alg), pcr, value.size(), size));
      }
      EVP_DigestUpdate(ctx.get(), value.data(), value.size());
      selected[sel.hash_alg][pcr] = value;
      ++count;
    }
  }
  std::vector<uint8_t> digest(static_cast<size_t>(EVP_MD_get_size(md)));
  EVP_DigestFinal_ex(ctx.get(), digest.data(), nullptr);
  bool same = digest == quote.pcr_digest;
  RETURN_IF_ERROR(log.Expect(
      same, "tpm.pcrs.digest",
      same
          ? absl::StrFormat("%s over the %u selected PCR values equals pcrDigest",
                            HashAlgName(digest_alg), count)
          : absl::StrCat(HashAlgName(digest_alg), " of the given PCR values is ", HexEncode(digest),
                         " but the quote's pcrDigest is ", HexEncode(quote.pcr_digest))));
  if (quoted != nullptr) *quoted = std::move(selected);
  return absl::OkStatus();
}

struct QuoteVerifier::Impl {
  AkPublicKey ak;

  // Verify contexts prepared for (scheme, hash), reused across calls: setting one up costs more
  // than an RSA-2048 verification in OpenSSL 3.0. A context is used by one caller at a time.
  using CtxPtr = std::unique_ptr<EVP_PKEY_CTX, ossl::Deleter<EVP_PKEY_CTX_free>>;
  std::mutex mu;
  std::map<std::pair<uint16_t, uint16_t>, std::vector<CtxPtr>> pool;

  absl::StatusOr<CtxPtr> Take(uint16_t sig_alg, uint16_t hash_alg) {
    {
      std::lock_guard<std::mutex> lock(mu);
      auto& free = pool[{sig_alg, hash_alg}];
      if (!free.empty()) {
        CtxPtr ctx = std::move(free.back());
        free.pop_back();
        return ctx;
      }
    }
    CtxPtr ctx(EVP_PKEY_CTX_new(ak.key.get(), nullptr));
    bool ok = ctx && EVP_PKEY_verify_init(ctx.get()) == 1 &&
              EVP_PKEY_CTX_set_signature_md(ctx.get(), TpmAlgMd(hash_alg)) == 1;
    if (ok && sig_alg == kAlgRsapss) {
      // TPM RSAPSS salts with the digest size or the maximum; RSA_PSS_SALTLEN_AUTO accepts either.
      ok = EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PSS_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(), RSA_PSS_SALTLEN_AUTO) == 1;
    } else if (ok && sig_alg == kAlgRsassa) {
      ok = EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) == 1;
    }
    if (!ok) {
      ERR_clear_error();
      return absl::InternalError("cannot prepare a verification context for the AK");
    }
    return ctx;
  }

  void Give(uint16_t sig_alg, uint16_t hash_alg, CtxPtr ctx) {
    std::lock_guard<std::mutex> lock(mu);
    auto& free = pool[{sig_alg, hash_alg}];
    if (free.size() < 8) free.push_back(std::move(ctx));
  }
};

QuoteVerifier::QuoteVerifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
QuoteVerifier::~QuoteVerifier() = default;

absl::StatusOr<std::unique_ptr<QuoteVerifier>> QuoteVerifier::Create(const AkPublicKey& ak) {
  auto impl = std::make_unique<Impl>();
  if (!ak.key) return absl::InvalidArgumentError("AK: no key");
  impl->ak = ak;
  return std::unique_ptr<QuoteVerifier>(new QuoteVerifier(std::move(impl)));
}

absl::StatusOr<VerifiedQuote> QuoteVerifier::Verify(std::span<const uint8_t> attest,
                                                    std::span<const uint8_t> signature,
                                                    SignatureFormat format,
                                                    const QuoteVerifyOptions& options,
                                                    CheckLog* log) const {
  CheckLog local;
  CheckLog& L = log ? *log : local;
  const AkPublicKey& ak = impl_->ak;
  VerifiedQuote out;
  ASSIGN_OR_RETURN(out.quote, ParseQuote(attest));
  ASSIGN_OR_RETURN(out.signature, ParseQuoteSignature(signature, format, ak));
  const Quote& q = out.quote;
  const QuoteSignature& sig = out.signature;

  RETURN_IF_ERROR(CheckAkAttributes(ak, L));
  if (options.expected_ak_name) RETURN_IF_ERROR(CheckAkName(ak, *options.expected_ak_name, L));
  RETURN_IF_ERROR(L.Expect(q.magic == kTpmGeneratedValue, "tpm.quote.magic",
                           absl::StrFormat("magic 0x%08x, expected TPM_GENERATED_VALUE 0x%08x",
                                           q.magic, kTpmGeneratedValue)));
  RETURN_IF_ERROR(L.Expect(
      q.type == kStAttestQuote, "tpm.quote.type",
      absl::StrFormat("type 0x%04x, expected TPM_ST_ATTEST_QUOTE 0x%04x", q.type, kStAttestQuote)));
  bool nonce_ok = q.extra_data == options.nonce;
  if (options.skip_nonce) {
    L.Pass("tpm.quote.nonce", absl::StrCat("not compared (unbound evidence): qualifying data '",
                                           HexEncode(q.extra_data), "'"));
  } else {
    RETURN_IF_ERROR(L.Expect(
        nonce_ok, "tpm.quote.nonce",
        nonce_ok ? absl::StrCat("qualifying data equals the nonce '", HexEncode(options.nonce), "'")
                 : absl::StrCat("qualifying data '", HexEncode(q.extra_data),
                                "' but expected nonce '", HexEncode(options.nonce), "'")));
  }
  // The signature must match the key type, and a key that fixes its scheme fixes both parts.
  bool type_ok = ak.type == kAlgRsa ? (sig.sig_alg == kAlgRsassa || sig.sig_alg == kAlgRsapss)
                                    : sig.sig_alg == kAlgEcdsa;
  bool fixed_ok =
      ak.scheme == kAlgNull || (sig.sig_alg == ak.scheme && sig.hash_alg == ak.scheme_hash);
  RETURN_IF_ERROR(L.Expect(
      type_ok && fixed_ok, "tpm.signature.scheme",
      absl::StrCat(SigAlgName(sig.sig_alg), "/", HashAlgName(sig.hash_alg), " with a ",
                   ak.Describe(), " AK",
                   ak.scheme != kAlgNull ? absl::StrCat(" whose scheme is ", SigAlgName(ak.scheme),
                                                        "/", HashAlgName(ak.scheme_hash))
                                         : "")));
  const EVP_MD* md = TpmAlgMd(sig.hash_alg);
  if (md == nullptr) {
    return L.Fail("tpm.signature.hash",
                  absl::StrCat("signature hash ", HashAlgName(sig.hash_alg), " is not supported"));
  }
  RETURN_IF_ERROR(L.Expect(
      sig.hash_alg != kAlgSha1 || options.allow_sha1, "tpm.signature.hash",
      sig.hash_alg == kAlgSha1
          ? (options.allow_sha1 ? "SHA-1 signature accepted (--allow-sha1)"
                                : "the quote is signed with SHA-1; rejected unless --allow-sha1")
          : HashAlgName(sig.hash_alg)));

  std::vector<uint8_t> digest(static_cast<size_t>(EVP_MD_get_size(md)));
  if (EVP_Digest(q.raw.data(), q.raw.size(), digest.data(), nullptr, md, nullptr) != 1) {
    return absl::InternalError("digest of the quote failed");
  }
  ASSIGN_OR_RETURN(auto ctx, impl_->Take(sig.sig_alg, sig.hash_alg));
  const std::vector<uint8_t>& sig_bytes = sig.sig_alg == kAlgEcdsa ? sig.ecdsa_der : sig.rsa;
  bool ok = EVP_PKEY_verify(ctx.get(), sig_bytes.data(), sig_bytes.size(), digest.data(),
                            digest.size()) == 1;
  ERR_clear_error();
  impl_->Give(sig.sig_alg, sig.hash_alg, std::move(ctx));
  RETURN_IF_ERROR(
      L.Expect(ok, "tpm.signature",
               ok ? absl::StrCat(SigAlgName(sig.sig_alg), "/", HashAlgName(sig.hash_alg),
                                 " signature verifies with the ", ak.Describe(), " AK")
                  : absl::StrCat(SigAlgName(sig.sig_alg), "/", HashAlgName(sig.hash_alg),
                                 " signature over the TPMS_ATTEST does not verify with the AK")));
  if (options.pcrs) {
    // TPM2_Quote digests the selected PCRs with the signing scheme's hash, not the bank's.
    RETURN_IF_ERROR(CheckPcrDigest(q, sig.hash_alg, *options.pcrs, L, &out.quoted_pcrs));
  }
  return out;
}

}  // namespace attest::tpm
