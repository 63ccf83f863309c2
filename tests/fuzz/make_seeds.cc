// Writes synthetic seed inputs for the fuzz corpora (software-signed; no real evidence is copied
// into the project). Usage: make_fuzz_seeds CORPUS_ROOT   (writes CORPUS_ROOT/<target>/...)
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "attest/files.h"
#include "attest/seal/key_file.h"
#include "attest/seal/sealed_blob.h"
#include "attest/snp/report.h"
#include "attest/tdx/quote.h"
#include "attest/tpm/cel.h"
#include "pe_builder.h"
#include "snp_signer.h"
#include "software_tsa.h"
#include "tdx_signer.h"
#include "test_support.h"
#include "tpm_signer.h"
#include "tuf_repo.h"

using attest::snp::Product;
using attest::snp::SigningKey;
namespace t = attest::testing;

namespace {

std::vector<uint8_t> Tagged(uint8_t tag, const std::vector<uint8_t>& bytes) {
  std::vector<uint8_t> out(bytes.size() + 1);
  out[0] = tag;
  std::copy(bytes.begin(), bytes.end(), out.begin() + 1);
  return out;
}

void PutLe(std::vector<uint8_t>& b, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// Structurally valid, unsigned TDX quotes (v4 and v5/TDX 1.5): every length field consistent, a
// PEM chain inside, so that the fuzzer starts deep in the parser.
bool WriteTdxSeeds(const std::filesystem::path& root) {
  std::string pem =
      t::CertificatesToPem(t::SharedSnpSigner(Product::kMilan).Chain(SigningKey::kVcek));
  for (int version : {4, 5}) {
    std::vector<uint8_t> q;
    PutLe(q, static_cast<uint64_t>(version), 2);
    PutLe(q, 2, 2);
    PutLe(q, 0x81, 4);
    PutLe(q, 0, 4);
    q.insert(q.end(), 16, 0x93);  // QE vendor id
    q.insert(q.end(), 20, 0);     // user data
    size_t body = version == 5 ? 648 : 584;
    if (version == 5) {
      PutLe(q, 3, 2);
      PutLe(q, body, 4);
    }
    for (size_t i = 0; i < body; ++i) q.push_back(static_cast<uint8_t>(i));
    std::vector<uint8_t> cert;  // type 6: QE report, signature, auth data, inner type 5
    cert.insert(cert.end(), 384 + 64, 1);
    PutLe(cert, 32, 2);
    cert.insert(cert.end(), 32, 2);
    PutLe(cert, 5, 2);
    PutLe(cert, pem.size(), 4);
    cert.insert(cert.end(), pem.begin(), pem.end());
    std::vector<uint8_t> sig;
    sig.insert(sig.end(), 128, 3);
    PutLe(sig, 6, 2);
    PutLe(sig, cert.size(), 4);
    sig.insert(sig.end(), cert.begin(), cert.end());
    PutLe(q, sig.size(), 4);
    q.insert(q.end(), sig.begin(), sig.end());
    t::WriteFileOrDie(root / "tdx_quote" / ("synthetic_v" + std::to_string(version)), q);
  }
  return true;
}

bool WriteTpmSeeds(const std::filesystem::path& root) {
  using attest::tpm::kAlgSha1;
  using attest::tpm::kAlgSha256;
  using attest::tpm::kAlgSha384;
  using S = t::SoftwareTpmQuoter::Scheme;
  attest::tpm::PcrBanks pcrs;
  for (uint32_t i = 0; i < 24; ++i)
    pcrs[kAlgSha256][i] = std::vector<uint8_t>(32, static_cast<uint8_t>(i));
  pcrs[kAlgSha1][0] = std::vector<uint8_t>(20, 1);
  int n = 0;
  for (S scheme : {S::kRsassa, S::kRsapss, S::kEcdsaP256}) {
    auto quoter = t::SoftwareTpmQuoter::Create(scheme);
    if (!quoter.ok()) return false;
    auto q = (*quoter)->Quote(pcrs, {0x90, 0x09});
    if (!q.ok()) return false;
    std::string stem = "scheme" + std::to_string(n++);
    t::WriteFileOrDie(root / "tpm_quote" / (stem + "_attest"), Tagged(0, q->attest));
    t::WriteFileOrDie(root / "tpm_quote" / (stem + "_signature"), Tagged(1, q->signature));
    t::WriteFileOrDie(root / "tpm_quote" / (stem + "_ak"), Tagged(2, (*quoter)->ak_tpmt_public()));
  }
  // Event logs: crypto-agile with the common event types, and a StartupLocality-3 log.
  std::vector<uint8_t> locality(17, 0);
  std::memcpy(locality.data(), "StartupLocality", 16);
  locality[16] = 3;
  std::vector<uint8_t> variable(32 + 2 * 10 + 4, 0);
  variable[16] = 10;  // UnicodeNameLength
  variable[24] = 4;   // VariableDataLength
  for (int i = 0; i < 10; ++i) variable[32 + 2 * i] = static_cast<uint8_t>("SecureBoot"[i]);
  std::vector<uint8_t> image(32, 0);
  image[8] = 0x10;
  std::vector<t::TestEvent> events = {
      {0, 3, locality},
      {0, 0x8, {'1', 0, '.', 0, '0', 0}},
      {7, 0x80000001, variable},
      {4, 0x80000003, image},
      {0, 0x80000008, std::vector<uint8_t>(16, 2)},
      {7, 4, {0, 0, 0, 0}},
      {5, 0x80000007, {'E', 'x', 'i', 't'}},
      {8, 0xD, {'c', 'm', 'd', 0}},
  };
  t::WriteFileOrDie(root / "eventlog" / "tcg2_sha256_sha384",
                    t::BuildTcg2Log({kAlgSha256, kAlgSha384}, events));
  t::WriteFileOrDie(root / "eventlog" / "tcg2_sha1", t::BuildTcg2Log({kAlgSha1}, events));
  // CEL in both encodings.
  attest::tpm::Cel cel;
  const char* names[] = {"launch-config", "container-manifest", "container-restart"};
  for (uint64_t i = 0; i < 3; ++i) {
    std::string data = std::string("value-") + names[i];
    auto rec = attest::tpm::MakeApplianceRecord(
        i, 15, names[i], std::vector<uint8_t>(data.begin(), data.end()), {kAlgSha256, kAlgSha384});
    if (!rec.ok()) return false;
    cel.push_back(*rec);
  }
  t::WriteFileOrDie(root / "cel_json" / "appliance.json", attest::tpm::SerializeCelJson(cel));
  t::WriteFileOrDie(root / "cel_tlv" / "appliance.tlv", attest::tpm::SerializeCelTlv(cel));
  // A synthetic HCL report: header, a zero SNP-sized report, the runtime header and a JWK set.
  std::string runtime =
      R"({"keys":[{"kid":"HCLAkPub","kty":"RSA","e":"AQAB","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw"}]})";
  std::vector<uint8_t> hcl(2600, 0);
  std::memcpy(hcl.data(), "HCLA", 4);
  hcl[4] = 2;
  hcl[0x4C0] = static_cast<uint8_t>((runtime.size() + 20) & 0xff);
  hcl[0x4C1] = static_cast<uint8_t>((runtime.size() + 20) >> 8);
  hcl[0x4C4] = 1;
  hcl[0x4C8] = 2;
  hcl[0x4CC] = 1;
  hcl[0x4D0] = static_cast<uint8_t>(runtime.size() & 0xff);
  hcl[0x4D1] = static_cast<uint8_t>(runtime.size() >> 8);
  std::memcpy(hcl.data() + 0x4D4, runtime.data(), runtime.size());
  t::WriteFileOrDie(root / "hcl_report" / "hcl_snp", Tagged(0, hcl));
  nlohmann::json evidence = {
      {"report", hcl},
      {"vcek", "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"},
      {"quote",
       {{"message", std::vector<int>(10, 1)},
        {"signature", std::vector<int>(4, 2)},
        {"pcrs", {std::vector<int>(32, 0)}}}}};
  std::string text = evidence.dump();
  t::WriteFileOrDie(root / "hcl_report" / "evidence_json",
                    Tagged(1, std::vector<uint8_t>(text.begin(), text.end())));
  return WriteTdxSeeds(root);
}

// Software-signed v4/v5 quotes, and their PCK leaf (DER, with the SGX extension) for the PCK
// extension decoder.
bool WriteSignedTdxSeeds(const std::filesystem::path& root) {
  auto signer = t::SoftwareTdxSigner::Create();
  if (!signer.ok()) return false;
  t::SoftwareTdxSigner::QuoteSpec spec;
  spec.pck_tcb = {4, 4, 2, 2, 4, 1, 0, 5};
  for (uint16_t version : {4, 5}) {
    spec.version = version;
    spec.body.tdx15 = version == 5;
    auto signed_quote = (*signer)->SignQuote(spec);
    if (!signed_quote.ok()) return false;
    t::WriteFileOrDie(root / "tdx_quote" / ("software_signed_v" + std::to_string(version)),
                      *signed_quote);
  }
  spec.version = 4;
  spec.body.tdx15 = false;
  auto quote = (*signer)->SignQuote(spec);
  if (!quote.ok()) return false;
  auto parsed = attest::tdx::ParseQuote(*quote);
  if (!parsed.ok()) return false;
  auto chain = attest::ParseCertificates(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(parsed->pck_chain_pem.data()),
                               parsed->pck_chain_pem.size()),
      "PCK chain");
  if (!chain.ok()) return false;
  t::WriteFileOrDie(root / "pck_extensions" / "software_pck_leaf.der", (*chain)[0]);
  nlohmann::json config = {
      {"version", 1},
      {"listen", "127.0.0.1:0"},
      {"client_ca_pem", t::CertificatesToPem({(*signer)->root_der()})},
      {"allowed_clients",
       {{{"subject", "CN=coordinator"}}, {{"spki_sha256", std::string(64, 'a')}}}},
      {"limits", {{"requests_per_second", 50}, {"burst", 10}, {"query_budget", 1000}}},
      {"container",
       {{"image", "model.oci"}, {"expected_digest", "sha256:" + std::string(64, '0')}}},
      {"platform", "software-snp"},
      {"tpm", {{"tcti", "swtpm:host=127.0.0.1,port=2321"}, {"trust", "host"}}},
      {"release_root_sha256", std::string(64, 'b')}};
  t::WriteFileOrDie(root / "launch_config" / "valid.json", config.dump(2));
  return true;
}

// A synthetic one-page firmware with every footer GUID table entry the launch-digest precompute
// reads (SEV-ES reset block, SEV hashes table, SEV metadata with all five section types, SVSM
// info); deterministic.
void WriteOvmfSeed(const std::filesystem::path& root) {
  std::vector<uint8_t> fw(4096, 0);
  auto guid = [](const char* text) {
    std::vector<uint8_t> g;
    for (const char* p = text; *p; ++p) {
      if (*p == '-') continue;
      g.push_back(static_cast<uint8_t>(std::stoi(std::string(p, 2), nullptr, 16)));
      ++p;
    }
    std::reverse(g.begin(), g.begin() + 4);
    std::reverse(g.begin() + 4, g.begin() + 6);
    std::reverse(g.begin() + 6, g.begin() + 8);
    return g;
  };
  auto put = [&](size_t off, uint64_t v, size_t n) {
    for (size_t i = 0; i < n; ++i) fw[off + i] = static_cast<uint8_t>(v >> (8 * i));
  };
  // SEV metadata at 0x800: "ASEV", size, version 1, 5 sections.
  const uint32_t sections[][3] = {{0x800000, 0x2000, 1},
                                  {0x80D000, 0x1000, 2},
                                  {0x80E000, 0x1000, 3},
                                  {0x80F000, 0x1000, 4},
                                  {0x810000, 0x1000, 0x10}};
  std::memcpy(fw.data() + 0x800, "ASEV", 4);
  put(0x804, 16 + 12 * 5, 4);
  put(0x808, 1, 4);
  put(0x80C, 5, 4);
  for (size_t i = 0; i < 5; ++i)
    for (size_t k = 0; k < 3; ++k) put(0x810 + 12 * i + 4 * k, sections[i][k], 4);
  // Footer GUID table, entries written backwards from the footer at size - 50.
  size_t end = fw.size() - 50;
  auto entry = [&](const char* g, std::vector<uint32_t> words) {
    const size_t len = 4 * words.size() + 18;
    const size_t start = end - len;
    for (size_t i = 0; i < words.size(); ++i) put(start + 4 * i, words[i], 4);
    put(end - 18, len, 2);
    auto bytes = guid(g);
    std::copy(bytes.begin(), bytes.end(), fw.begin() + static_cast<long>(end - 16));
    end = start;
  };
  entry("00f771de-1a7e-4fcb-890e-68c77e2fb44e", {0x80B004});
  entry("7255371f-3a3b-4b04-927b-1da6efa8d454", {0x810C00, 0x400});
  entry("dc886566-984a-4798-a75e-5585a7bf67cc", {static_cast<uint32_t>(fw.size() - 0x800)});
  entry("a789a612-0597-4c4b-a49f-cbb1fe9d1ddd", {0});
  const size_t footer = fw.size() - 50;
  put(footer, footer + 18 - end, 2);
  auto f = guid("96b582de-1fb2-45f7-baea-a366c55a082d");
  std::copy(f.begin(), f.end(), fw.begin() + static_cast<long>(footer + 2));
  t::WriteFileOrDie(root / "snp_ovmf" / "synthetic_ovmf.bin", fw);
}

// PE seeds: a test UKI (sections .osrel, .cmdline, .linux with a PE kernel, .initrd) and a
// signed-style image with trailing data and a certificate table.
void WritePeSeeds(const std::filesystem::path& root) {
  std::filesystem::create_directories(root / "pe");
  t::WriteFileOrDie(root / "pe" / "test_uki.efi",
                    t::BuildTestUki("console=ttyS0 roothash=00", std::vector<uint8_t>(600, 0x5a)));
  t::PeSpec spec;
  spec.sections = {{".text", std::vector<uint8_t>(700, 0xcc)}};
  spec.trailing_data = std::vector<uint8_t>(24, 1);
  spec.certificate = std::vector<uint8_t>(40, 2);
  t::WriteFileOrDie(root / "pe" / "with_certificate.efi", t::BuildPe(spec));
}

// TUF seeds: the four roles of a repository signed by software keys.
void WriteTufSeeds(const std::filesystem::path& root) {
  t::ScopedTempDir tmp;
  t::TufRepo repo(tmp.path() / "repo");
  repo.target_files["release.raw"] = "payload";
  repo.PublishRoot();
  repo.PublishAll();
  std::filesystem::create_directories(root / "tuf_metadata");
  for (const char* f : {"1.root.json", "timestamp.json", "snapshot.json", "targets.json"}) {
    std::filesystem::copy_file(repo.dir() / f, root / "tuf_metadata" / f,
                               std::filesystem::copy_options::overwrite_existing);
  }
}

}  // namespace

// RFC 3161 responses of the software TSA: with and without its certificate.
void WriteSignedTimeSeeds(const std::filesystem::path& root) {
  t::SoftwareTsa tsa;
  const absl::Time when = absl::FromUnixSeconds(1795000000);
  t::WriteFileOrDie(root / "signed_time" / "with_cert.tsr", tsa.Stamp(when));
  t::WriteFileOrDie(root / "signed_time" / "without_cert.tsr", tsa.Stamp(when, "x", false));
}

// Sealed blobs under the fuzz target's fixed key: empty, one chunk, three chunks.
void WriteSealedBlobSeeds(const std::filesystem::path& root) {
  attest::seal::ModelKey key;
  key.fill(0x5a);
  std::vector<uint8_t> plain(150);
  for (size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<uint8_t>(i);
  std::filesystem::create_directories(root / "sealed_blob");
  for (auto [name, size, chunk] : {std::tuple{"empty", 0, 64}, std::tuple{"one_chunk", 150, 4096},
                                   std::tuple{"three_chunks", 150, 64}}) {
    auto sealed = attest::seal::Seal(std::span(plain).first(size), key, chunk);
    if (!sealed.ok()) std::abort();
    t::WriteFileOrDie(root / "sealed_blob" / (std::string(name) + ".sealed"),
                      std::string(sealed->begin(), sealed->end()));
  }
}

// A model key file under the fuzz target's passphrase.
void WriteSealedModelSeeds(const std::filesystem::path& root) {
  attest::seal::ModelKey key;
  key.fill(0x33);
  auto text = attest::seal::EncryptModelKey(key, "example-model:1", "fuzz passphrase");
  if (!text.ok()) std::abort();
  std::filesystem::create_directories(root / "sealed_model");
  t::WriteFileOrDie(root / "sealed_model" / "model.key.json", *text);
}

// Google Cloud's vTPM NV contents: the RSA AK template and an AK certificate, each as written and
// zero padded (the indices may be larger than their content).
void WriteGceAkSeeds(const std::filesystem::path& root) {
  auto tmpl = t::RsaAkTemplate();
  auto signer = t::SoftwareSnpSigner::Create(Product::kMilan, 2048);
  if (!signer.ok()) std::abort();
  auto cert = (*signer)->Chain(SigningKey::kVcek).front();
  const auto dir = root / "gce_ak";
  std::filesystem::create_directories(dir);
  t::WriteFileOrDie(dir / "template.bin", std::string(tmpl.begin(), tmpl.end()));
  tmpl.resize(1024, 0);
  t::WriteFileOrDie(dir / "template_padded.bin", std::string(tmpl.begin(), tmpl.end()));
  t::WriteFileOrDie(dir / "certificate.der", std::string(cert.begin(), cert.end()));
  cert.resize(cert.size() + 512, 0);
  t::WriteFileOrDie(dir / "certificate_padded.der", std::string(cert.begin(), cert.end()));
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_ROOT\n", argv[0]);
    return 2;
  }
  std::filesystem::path root = argv[1];
  WritePeSeeds(root);
  WriteTufSeeds(root);
  WriteSignedTimeSeeds(root);
  WriteSealedBlobSeeds(root);
  WriteSealedModelSeeds(root);
  WriteGceAkSeeds(root);
  int n = 0;
  for (Product product : {Product::kMilan, Product::kGenoa, Product::kTurin}) {
    auto signer = t::SoftwareSnpSigner::Create(product, 2048);
    if (!signer.ok()) return 1;
    std::string name(attest::snp::ProductName(product));
    for (SigningKey kind : {SigningKey::kVcek, SigningKey::kVlek}) {
      t::VekOptions vo;
      vo.kind = kind;
      vo.tcb = {4, 0, 22, 213, std::nullopt};
      if (product == Product::kTurin) vo.tcb.fmc = 1;
      vo.chip_id.fill(0x42);
      std::string stem = name + "_" + std::string(attest::snp::SigningKeyName(kind));
      for (uint32_t version : {2u, 3u, 5u}) {
        auto evidence = (*signer)->MakeEvidence(version, vo);
        if (!evidence.ok()) return 1;
        t::WriteFileOrDie(root / "snp_report" / (stem + "_v" + std::to_string(version) + ".bin"),
                          evidence->report);
        if (version == 5) {
          t::WriteFileOrDie(root / "amd_cert" / (stem + ".der"), evidence->vek.cert_der);
        }
        ++n;
      }
      t::WriteFileOrDie(root / "certificates" / (stem + "_chain.pem"),
                        t::CertificatesToPem((*signer)->Chain(kind)));
    }
    auto crl = (*signer)->MakeCrl({0x10001}, absl::FromUnixSeconds(1700000000),
                                  absl::FromUnixSeconds(1800000000));
    if (!crl.ok()) return 1;
    t::WriteFileOrDie(root / "certificates" / (name + "_crl.der"), *crl);
  }
  WriteOvmfSeed(root);
  if (!WriteTpmSeeds(root)) return 1;
  if (!WriteSignedTdxSeeds(root)) return 1;
  t::WriteFileOrDie(root / "certificates" / "hex.txt", std::string("00ff10ab"));
  t::WriteFileOrDie(root / "certificates" / "base64.txt", std::string("aGVsbG8gd29ybGQ="));
  std::printf("wrote %d reports and their certificates under %s\n", n, root.c_str());
  return 0;
}
