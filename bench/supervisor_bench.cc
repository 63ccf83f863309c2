// Issue 5's benchmark: the supervisor against its peers, as ratios from one run on loopback.
//   1. Predict through the supervisor (attested mTLS channel → supervisor → unix socket → model)
//      vs the same model server called directly over gRPC mTLS: p50, p99, QPS (one client thread).
//   2. Attested connect (handshake + GetEvidence + full verification) vs a plain mTLS connect
//      plus the first Predict.
//   3. Container measurement of a 1 GiB image (all cores) vs `sha256sum` of the same blobs, and
//      vs OpenSSL SHA-256 on one core (per-core ratio).
//   4. The supervisor's resident memory while serving.
// Latency percentiles need every sample, so this harness times calls itself (steady_clock)
// instead of Google Benchmark's mean-per-iteration loop.
#include <grpcpp/grpcpp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "appliance/v1/service.grpc.pb.h"
#include "appliance_fixture.h"
#include "attest/client/attested_channel.h"
#include "attest/client/tls.h"
#include "attest/encoding.h"
#include "attest/evidence.h"
#include "attest/files.h"
#include "supervisor/oci.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using namespace attest::testing;  // NOLINT
using Clock = std::chrono::steady_clock;

constexpr char kInput[] = R"({"instances": [[0.5, 0.1]]})";

struct Latency {
  double p50_us = 0, p99_us = 0, qps = 0;
};

Latency MeasurePredict(const std::shared_ptr<grpc::Channel>& ch, int calls) {
  auto stub = appliance::v1::Inference::NewStub(ch);
  appliance::v1::PredictRequest req;
  req.set_input(kInput);
  std::vector<double> us;
  us.reserve(calls);
  const auto start = Clock::now();
  for (int i = 0; i < calls; ++i) {
    grpc::ClientContext ctx;
    appliance::v1::PredictResponse resp;
    const auto t0 = Clock::now();
    grpc::Status s = stub->Predict(&ctx, req, &resp);
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (!s.ok()) {
      std::fprintf(stderr, "predict failed: %s\n", s.error_message().c_str());
      std::exit(1);
    }
  }
  const double total = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[us.size() * 99 / 100], calls / total};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Seconds(const std::function<void()>& f) {
  const auto t0 = Clock::now();
  f();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

long RssKib(pid_t pid) {  // NOLINT(runtime/int)
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

}  // namespace

int main() {
  ScopedTempDir dir;
  TestPki pki(dir.path() / "pki", "Coordinator CA");
  IssuedCert client = pki.Issue("coordinator", "client");
  Swtpm swtpm(dir.path() / "swtpm");
  LaunchConfigSpec spec;
  spec.ca_pem = pki.ca_pem();
  spec.tcti = swtpm.tcti();
  SupervisorProcess sup(dir.path() / "appliance", MakeLaunchConfig(spec));
  if (!sup.WaitReady()) {
    std::fprintf(stderr, "supervisor did not start:\n%s\n", sup.log().c_str());
    return 1;
  }
  const fs::path ref = dir.path() / "reference.json";
  WriteFileOrDie(ref, MakeReferenceValues({ExampleModelDigest()}));

  // The same model server, directly over gRPC mTLS (no supervisor, no container).
  auto server_id = attest::client::GenerateSelfSignedIdentity("model-direct", absl::Hours(1));
  WriteFileOrDie(dir.path() / "direct.pem", server_id->cert_pem);
  WriteFileOrDie(dir.path() / "direct.key", server_id->key_pem);
  WriteFileOrDie(dir.path() / "ca.pem", pki.ca_pem());
  const int direct_port = PickFreePort();
  BackgroundProcess direct(
      {(BinDir() / "example-model-server").string(), "--listen",
       absl::StrCat("127.0.0.1:", direct_port), "--tls-cert", (dir.path() / "direct.pem").string(),
       "--tls-key", (dir.path() / "direct.key").string(), "--client-ca",
       (dir.path() / "ca.pem").string(), "--weights", (ModelDir() / "weights.json").string()},
      dir.path() / "direct.log");

  attest::client::ConnectOptions o;
  o.target = sup.target();
  o.client_cert_pem = client.cert_pem;
  o.client_key_pem = client.key_pem;
  o.launch_config = ReadFileOrDie(sup.config_path());
  o.reference = *attest::ParseReferenceValues(ReadFileOrDie(ref));
  o.extra_snp_roots_der =
      *attest::ParseCertificates(ReadFileOrDie(sup.state_dir() / "snp_ark.pem"), "ark");
  attest::CheckLog log;
  auto conn = attest::client::ConnectAttested(o, log);
  if (!conn.ok()) {
    std::fprintf(stderr, "attested connect failed: %s\n",
                 std::string(conn.status().message()).c_str());
    return 1;
  }
  auto direct_ch = attest::client::PlainMtlsChannel(absl::StrCat("127.0.0.1:", direct_port),
                                                    client.cert_pem, client.key_pem);
  if (!direct_ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    std::fprintf(stderr, "direct model server did not start\n");
    return 1;
  }

  // The model's own unix socket, without TLS (what the supervisor's hop costs by itself).
  auto unix_ch =
      grpc::CreateChannel("unix:" + (sup.state_dir() / "model-socket" / "model.sock").string(),
                          grpc::InsecureChannelCredentials());

  // 1. Predict latency and throughput, interleaved rounds so that noise hits both alike.
  MeasurePredict(conn->channel, 300);
  MeasurePredict(direct_ch, 300);
  std::vector<Latency> via, dir_, unix_;
  for (int round = 0; round < 4; ++round) {
    via.push_back(MeasurePredict(conn->channel, 1500));
    dir_.push_back(MeasurePredict(direct_ch, 1500));
    unix_.push_back(MeasurePredict(unix_ch, 1500));
  }
  auto med = [](const std::vector<Latency>& v, double Latency::*f) {
    std::vector<double> x;
    for (const auto& l : v) x.push_back(l.*f);
    return Median(x);
  };
  const double v50 = med(via, &Latency::p50_us), d50 = med(dir_, &Latency::p50_us);
  const double v99 = med(via, &Latency::p99_us), d99 = med(dir_, &Latency::p99_us);
  const double vq = med(via, &Latency::qps), dq = med(dir_, &Latency::qps);
  const double u50 = med(unix_, &Latency::p50_us);
  const long rss = RssKib(sup.pid());  // NOLINT(runtime/int)

  // 2. Attested connect vs plain mTLS connect + first RPC (new channel, new TLS session each).
  std::vector<double> attested_ms, plain_ms;
  for (int i = 0; i < 25; ++i) {
    attested_ms.push_back(1000 * Seconds([&] {
                            attest::CheckLog l;
                            auto c = attest::client::ConnectAttested(o, l);
                            if (!c.ok()) std::exit(1);
                          }));
    plain_ms.push_back(1000 * Seconds([&] {
                         auto ch = attest::client::PlainMtlsChannel(o.target, client.cert_pem,
                                                                    client.key_pem);
                         auto stub = appliance::v1::Inference::NewStub(ch);
                         grpc::ClientContext ctx;
                         appliance::v1::PredictRequest req;
                         req.set_input(kInput);
                         appliance::v1::PredictResponse resp;
                         if (!stub->Predict(&ctx, req, &resp).ok()) std::exit(1);
                       }));
  }

  // Where the attested connect's time goes: the GetEvidence round trip (server: report, quote,
  // PCR reads) and the client's verification of the bundle.
  std::vector<double> evidence_ms, verify_ms;
  {
    auto ch = attest::client::PlainMtlsChannel(o.target, client.cert_pem, client.key_pem);
    auto stub = appliance::v1::Attestation::NewStub(ch);
    for (int i = 0; i < 25; ++i) {
      appliance::v1::Evidence ev;
      std::vector<uint8_t> nonce(32, static_cast<uint8_t>(i));
      evidence_ms.push_back(1000 * Seconds([&] {
                              grpc::ClientContext ctx;
                              appliance::v1::GetEvidenceRequest req;
                              req.set_nonce(nonce.data(), nonce.size());
                              if (!stub->GetEvidence(&ctx, req, &ev).ok()) std::exit(1);
                            }));
      const std::string bytes = ev.SerializeAsString();
      attest::EvidenceExpectations e;
      e.nonce = nonce;
      e.tls_spki_der = conn->server_spki_der;
      e.launch_config = o.launch_config;
      e.reference = &o.reference;
      e.extra_snp_roots_der = o.extra_snp_roots_der;
      verify_ms.push_back(
          1000 * Seconds([&] {
            attest::CheckLog l;
            if (!attest::VerifyEvidence(
                     std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), e, l)
                     .ok())
              std::exit(1);
          }));
    }
  }

  // 3. Measuring a 1 GiB image: 8 layers of 128 MiB.
  const fs::path layout = dir.path() / "big";
  fs::create_directories(layout / "blobs" / "sha256");
  std::vector<uint8_t> chunk(128 << 20);
  std::string layers_json;
  std::vector<std::string> blob_paths;
  for (int i = 0; i < 8; ++i) {
    RAND_bytes(chunk.data(), 1 << 20);  // 1 MiB of noise, tiled (hashing cost is the same)
    for (size_t off = 1 << 20; off < chunk.size(); off += 1 << 20) {
      std::copy(chunk.begin(), chunk.begin() + (1 << 20), chunk.begin() + static_cast<long>(off));
    }
    chunk[0] = static_cast<uint8_t>(i);
    unsigned char md[32];
    EVP_Digest(chunk.data(), chunk.size(), md, nullptr, EVP_sha256(), nullptr);
    const std::string hex = attest::HexEncode(std::span<const uint8_t>(md, 32));
    WriteFileOrDie(layout / "blobs" / "sha256" / hex, chunk);
    blob_paths.push_back((layout / "blobs" / "sha256" / hex).string());
    layers_json += absl::StrCat(
        i ? "," : "", R"({"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:)",
        hex, R"(","size":)", chunk.size(), "}");
  }
  chunk.clear();
  chunk.shrink_to_fit();
  auto put_json = [&](const std::string& text) {
    unsigned char md[32];
    EVP_Digest(text.data(), text.size(), md, nullptr, EVP_sha256(), nullptr);
    const std::string hex = attest::HexEncode(std::span<const uint8_t>(md, 32));
    WriteFileOrDie(layout / "blobs" / "sha256" / hex, text);
    return std::make_pair(hex, text.size());
  };
  auto [cfg_hex, cfg_size] = put_json(R"({"architecture":"amd64","os":"linux"})");
  auto [man_hex, man_size] = put_json(absl::StrCat(
      R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:)",
      cfg_hex, R"(","size":)", cfg_size, R"(},"layers":[)", layers_json, "]}"));
  WriteFileOrDie(
      layout / "index.json",
      absl::StrCat(
          R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)",
          man_hex, R"(","size":)", man_size, "}]}"));
  WriteFileOrDie(layout / "oci-layout", std::string(R"({"imageLayoutVersion":"1.0.0"})"));
  const double gib = 1.0;
  (void)appliance::supervisor::VerifyOciLayout(layout);  // warm the page cache
  double ours = 1e9, single = 1e9, sums = 1e9;
  for (int i = 0; i < 3; ++i) {
    ours = std::min(ours, Seconds([&] {
                      if (!appliance::supervisor::VerifyOciLayout(layout).ok()) std::exit(1);
                    }));
    appliance::supervisor::OciLimits one;
    one.threads = 1;
    single = std::min(single, Seconds([&] {
                        if (!appliance::supervisor::VerifyOciLayout(layout, one).ok()) std::exit(1);
                      }));
  }
  std::vector<std::string> argv = {"/usr/bin/sha256sum"};
  argv.insert(argv.end(), blob_paths.begin(), blob_paths.end());
  sums = Seconds([&] { RunProcess(argv, 300); });
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());

  std::printf("\nSupervisor vs its peers (loopback, one run; %u cores):\n", cores);
  std::printf(
      "  Predict p50   via supervisor %7.0f us   direct mTLS %7.0f us   ratio %.2fx (goal <= "
      "1.15x)\n",
      v50, d50, v50 / d50);
  std::printf("  Predict p99   via supervisor %7.0f us   direct mTLS %7.0f us   ratio %.2fx\n", v99,
              d99, v99 / d99);
  std::printf(
      "  Predict QPS   via supervisor %7.0f      direct mTLS %7.0f      ratio %.2fx (goal >= "
      "0.85x)\n",
      vq, dq, vq / dq);
  std::printf("  (the model alone over its unix socket, no TLS: p50 %.0f us)\n", u50);
  std::printf(
      "  connect       attested %6.2f ms   plain mTLS + first RPC %6.2f ms   ratio %.2fx (goal <= "
      "2x)\n",
      Median(attested_ms), Median(plain_ms), Median(attested_ms) / Median(plain_ms));
  std::printf(
      "                of which GetEvidence round trip %.2f ms, client verification %.2f ms\n",
      Median(evidence_ms), Median(verify_ms));
  std::printf(
      "  measure 1 GiB ours (%u threads) %.2f GiB/s   sha256sum %.2f GiB/s   ratio %.2fx (goal >= "
      "3x)\n",
      cores, gib / ours, gib / sums, sums / ours);
  std::printf(
      "  per core      ours %.2f GiB/s/core   OpenSSL one core %.2f GiB/s   ratio %.2fx (goal >= "
      "0.8x)\n",
      gib / ours / cores, gib / single, (gib / ours / cores) / (gib / single));
  std::printf("  supervisor RSS while serving: %.1f MiB (goal <= 40 MiB)\n", rss / 1024.0);
  return 0;
}
