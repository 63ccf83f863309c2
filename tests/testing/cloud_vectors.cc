#include "cloud_vectors.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <tss2/tss2_mu.h>

#include <nlohmann/json.hpp>

#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/tpm/quote.h"
#include "test_support.h"

namespace attest::testing {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {
std::string ReadText(const fs::path& p) {
  auto b = ReadFileOrDie(p);
  return std::string(b.begin(), b.end());
}

// The GCE quote's PCR values, per bank, from the vector's quote_facts.json.
tpm::PcrBanks GcePcrsOf(const fs::path& vectors) {
  auto j = json::parse(ReadText(vectors / "tpm/quote-gce-cos85-nonce9009/quote_facts.json"));
  json banks;
  for (auto& [bank, q] : j["quotes"].items()) banks[bank] = q["pcrs"];
  auto pcrs = tpm::ParsePcrJson(banks.dump(), std::nullopt);
  EXPECT_TRUE(pcrs.ok()) << pcrs.status();
  return pcrs.ok() ? *pcrs : tpm::PcrBanks{};
}
}  // namespace

std::string Str(const std::vector<uint8_t>& b) { return std::string(b.begin(), b.end()); }

std::vector<uint8_t> RsaAkTpmtPublic(const tpm::AkPublicKey& ak) {
  BIGNUM* n = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(ak.key.get(), OSSL_PKEY_PARAM_RSA_N, &n), 1);
  std::vector<uint8_t> modulus(static_cast<size_t>(BN_num_bytes(n)));
  BN_bn2bin(n, modulus.data());
  const auto bits = static_cast<uint16_t>(BN_num_bits(n));
  BN_free(n);
  return RsaSigningTpmt(bits, modulus);
}

std::vector<uint8_t> RsassaTpmtSignature(const std::vector<uint8_t>& raw) {
  TPMT_SIGNATURE sig{};
  sig.sigAlg = TPM2_ALG_RSASSA;
  sig.signature.rsassa.hash = TPM2_ALG_SHA256;
  sig.signature.rsassa.sig.size = static_cast<UINT16>(raw.size());
  std::copy(raw.begin(), raw.end(), sig.signature.rsassa.sig.buffer);
  std::vector<uint8_t> out(sizeof(TPMT_SIGNATURE));
  size_t off = 0;
  EXPECT_EQ(Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, out.data(), out.size(), &off), TSS2_RC_SUCCESS);
  out.resize(off);
  return out;
}

namespace {

void AddPcrs(appliance::v1::TpmEvidence* t, const tpm::PcrBanks& banks) {
  for (const auto& [alg, pcrs] : banks) {
    auto* bank = t->add_pcrs();
    bank->set_hash_alg(alg);
    for (const auto& [i, v] : pcrs) (*bank->mutable_values())[i] = Str(v);
  }
}

}  // namespace

appliance::v1::Evidence AzureVectorBundle(const fs::path& vectors) {
  const fs::path d = vectors / "snp/genoa-azure-vtpm";
  appliance::v1::Evidence ev;
  ev.set_binding_version(1);
  auto hcl = testing::ReadFileOrDie(d / "hcl_report.bin");
  ev.mutable_azure()->set_hcl_report(Str(hcl));
  auto vcek = ParseCertificates(testing::ReadFileOrDie(d / "vcek.pem"), "vcek.pem");
  EXPECT_TRUE(vcek.ok()) << vcek.status();
  ev.mutable_azure()->set_vek_der(Str(vcek->front()));
  auto ak = tpm::ParseAkJwk(ReadText(d / "runtime_data.json"), "HCLAkPub");
  EXPECT_TRUE(ak.ok()) << ak.status();
  auto* t = ev.mutable_tpm();
  t->set_attest(Str(testing::ReadFileOrDie(d / "vtpm_quote.tpms_attest")));
  t->set_signature(Str(RsassaTpmtSignature(testing::ReadFileOrDie(d / "vtpm_quote.sig"))));
  t->set_ak_public(Str(RsaAkTpmtPublic(*ak)));
  t->set_trust(appliance::v1::TPM_TRUST_IN_TCB);
  auto pcrs = json::parse(ReadText(d / "vtpm_pcrs_sha256.json"));
  tpm::PcrBanks banks;
  for (auto& [index, hex] : pcrs.items()) {
    banks[tpm::kAlgSha256][static_cast<uint32_t>(std::stoul(index))] =
        *HexDecode(hex.get<std::string>());
  }
  AddPcrs(t, banks);
  return ev;
}

appliance::v1::Evidence AwsVectorBundle(const fs::path& vectors) {
  appliance::v1::Evidence ev;
  ev.set_binding_version(1);
  auto* snp = ev.mutable_snp();
  snp->set_report(Str(testing::ReadFileOrDie(vectors / "snp/milan-aws-vlek/report.bin")));
  snp->set_vek_der(Str(testing::ReadFileOrDie(vectors / "snp/milan-aws-vlek/vlek.der")));
  auto chain = ParseCertificates(
      testing::ReadFileOrDie(vectors / "snp/certs/kds_ask_ark_milan_vlek.pem"), "kds chain");
  EXPECT_TRUE(chain.ok()) << chain.status();
  for (const auto& c : *chain) snp->add_chain_der(Str(c));
  return ev;
}

appliance::v1::Evidence GceVectorBundle(const fs::path& vectors) {
  const fs::path d = vectors / "tpm/quote-gce-cos85-nonce9009";
  appliance::v1::Evidence ev;
  ev.set_binding_version(1);
  ev.mutable_vtpm_only();
  auto* t = ev.mutable_tpm();
  t->set_attest(Str(testing::ReadFileOrDie(d / "quote_sha256.tpms_attest")));
  t->set_signature(Str(testing::ReadFileOrDie(d / "quote_sha256.tpmt_signature")));
  t->set_ak_public(Str(testing::ReadFileOrDie(d / "ak_pub.tpmt_public")));
  t->add_ak_cert_chain_der(Str(testing::ReadFileOrDie(d / "ak_cert.der")));
  t->set_trust(appliance::v1::TPM_TRUST_HOST);
  tpm::PcrBanks all = GcePcrsOf(vectors);
  AddPcrs(t, {{tpm::kAlgSha256, all[tpm::kAlgSha256]}});
  return ev;
}

}  // namespace attest::testing
