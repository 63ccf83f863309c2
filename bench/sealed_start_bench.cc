// Issue 10's second figure: the time added to the first prediction by a sealed model. From the
// start of appliance-supervisor (software SNP signer, swtpm, namespace runner) to the first
// answered Predict over mTLS on loopback: the example model as a plain OCI archive vs the same
// model sealed (key fetched from a running appliance-keyd with fresh evidence, unsealed into a
// tmpfs, verified). Median of 5 starts each, as a ratio; the supervisor's own log gives the
// split (key release, unseal) of the last sealed start.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "appliance/v1/service.grpc.pb.h"
#include "appliance_fixture.h"
#include "attest/client/attested_channel.h"
#include "nlohmann/json.hpp"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using attest::testing::BackgroundProcess;
using attest::testing::SupervisorProcess;
using Clock = std::chrono::steady_clock;

// From the supervisor's start until it answers a Predict (polling every 5 ms): the total, and the
// part after its gRPC server listens (the `listen` file appears). The part before is the same in
// both paths and dominated by the software signer's RSA key generation, whose time varies by
// hundreds of milliseconds from run to run; the part after is where a sealed model adds its key
// release and unseal. Negative after 60 s.
struct Timing {
  double total_ms = -1, after_listen_ms = -1;
};
Timing UntilFirstPrediction(Clock::time_point started, SupervisorProcess& supervisor,
                            const attest::testing::IssuedCert& client) {
  const auto deadline = started + std::chrono::seconds(60);
  std::shared_ptr<grpc::Channel> channel;
  Clock::time_point listening;
  auto ms = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
  while (Clock::now() < deadline) {
    if (!channel) {
      std::error_code ec;
      if (fs::exists(supervisor.state_dir() / "listen", ec)) {
        listening = Clock::now();
        channel =
            attest::client::PlainMtlsChannel(supervisor.target(), client.cert_pem, client.key_pem);
      }
    }
    if (channel) {
      auto stub = appliance::v1::Inference::NewStub(channel);
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      appliance::v1::PredictRequest req;
      req.set_input(R"({"instances": [[0.5, 0.1]]})");
      appliance::v1::PredictResponse resp;
      if (stub->Predict(&ctx, req, &resp).ok()) {
        const auto now = Clock::now();
        return {ms(now - started), ms(now - listening)};
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return {};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main() {
  using namespace attest::testing;
  ScopedTempDir dir;
  TestPki pki(dir.path() / "pki", "Coordinator CA");
  const IssuedCert client = pki.Issue("coordinator", "client");
  const fs::path store = dir.path() / "keyd-store";
  auto init = RunKeyd({"init", "--store", store.string(), "--json"});
  if (init.exit_code != 0) {
    std::fprintf(stderr, "appliance-keyd init: %s\n", init.err.c_str());
    return 1;
  }
  const std::string spki = nlohmann::json::parse(init.out)["spki_sha256"].get<std::string>();
  const int keyd_port = PickFreePort();
  const fs::path key = SealExampleModel(dir.path(), "bench", dir.path() / "sealed");
  const std::string reference = MakeReferenceValues({ExampleModelDigest()});
  constexpr int kRuns = 5;
  std::vector<Timing> plain, sealed;
  std::string last_log;
  for (int i = 0; i < kRuns; ++i) {
    {
      const fs::path d = dir.path() / absl::StrCat("plain-", i);
      Swtpm swtpm(d / "swtpm");
      LaunchConfigSpec spec;
      spec.ca_pem = pki.ca_pem();
      spec.tcti = swtpm.tcti();
      const auto started = Clock::now();
      SupervisorProcess s(d / "appliance", MakeLaunchConfig(spec));
      plain.push_back(UntilFirstPrediction(started, s, client));
    }
    {
      const fs::path d = dir.path() / absl::StrCat("sealed-", i);
      Swtpm swtpm(d / "swtpm");
      LaunchConfigSpec spec;
      spec.ca_pem = pki.ca_pem();
      spec.tcti = swtpm.tcti();
      const std::string config = MakeSealedLaunchConfig(
          spec, dir.path() / "sealed", "bench", absl::StrCat("127.0.0.1:", keyd_port), spki);
      auto added = AddKeydModel(store, dir.path(), "bench", key, config, reference);
      if (added.exit_code != 0) {
        std::fprintf(stderr, "appliance-keyd add-model: %s\n", added.err.c_str());
        return 1;
      }
      // The key service is running before the appliance starts, and trusts the software signer
      // root the supervisor will write into its state directory (--roots is read per request).
      BackgroundProcess keyd(
          {(BinDir() / "appliance-keyd").string(), "serve", "--store", store.string(), "--listen",
           absl::StrCat("127.0.0.1:", keyd_port), "--roots", (d / "appliance" / "state").string()},
          d / "keyd.log", {{"APPLIANCE_KEYD_PASSPHRASE", kKeydTestPassphrase}});
      for (int w = 0; w < 200 && LoopbackSocket(keyd_port, false) < 0; ++w) {
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
      }
      const auto started = Clock::now();
      SupervisorProcess s(d / "appliance", config);
      sealed.push_back(UntilFirstPrediction(started, s, client));
      last_log = s.log();
    }
  }
  for (const auto& v : plain) {
    if (v.total_ms < 0) return std::fprintf(stderr, "a plain start did not serve in 60 s\n"), 1;
  }
  for (const auto& v : sealed) {
    if (v.total_ms < 0) {
      std::fprintf(stderr, "a sealed start did not serve in 60 s:\n%s\n", last_log.c_str());
      return 1;
    }
  }
  auto median = [](const std::vector<Timing>& v, double Timing::*field) {
    std::vector<double> x;
    for (const auto& t : v) x.push_back(t.*field);
    return Median(x);
  };
  const double p = median(plain, &Timing::after_listen_ms);
  const double q = median(sealed, &Timing::after_listen_ms);
  std::printf("Sealed model: time to the first prediction (median of %d starts each)\n", kRuns);
  std::printf("  from listening to the first answered Predict (where sealing adds its work):\n");
  std::printf(
      "    plain OCI archive: %7.1f ms\n    sealed + keyd:     %7.1f ms  (%.2fx, %+.1f ms)\n", p, q,
      q / p, q - p);
  std::printf(
      "  whole start (+ vTPM, software signer keys; RSA key generation varies widely): "
      "plain %.0f ms, sealed %.0f ms\n",
      median(plain, &Timing::total_ms), median(sealed, &Timing::total_ms));
  const auto at = last_log.find("model key released");
  if (at != std::string::npos) {
    std::printf("  last sealed start: %s\n",
                last_log.substr(at, last_log.find('\n', at) - at).c_str());
  }
  return 0;
}
