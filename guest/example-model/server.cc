// The example model server: runs inside the model container, serves appliance.v1.Inference on a
// unix socket (the container's only way out; its network namespace has nothing but `lo`).
//
//   example-model-server --socket /run/model/model.sock --weights /model/weights.json
//
// Input:  {"instances": [[x0, x1], ...]}           (≤ 1 MiB, ≤ 10,000 instances, finite numbers)
// Output: {"predictions": [{"class": "spiral-1", "index": 1, "probabilities": [p0, p1, p2]}, ...]}
// PredictStream answers one response per instance, in order.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "appliance/v1/service.grpc.pb.h"
#include "mlp.h"

namespace {

using appliance::v1::PredictRequest;
using appliance::v1::PredictResponse;
using nlohmann::json;

constexpr size_t kMaxInput = 1 << 20;
constexpr size_t kMaxInstances = 10000;

const char* const kClassNames[] = {"spiral-0", "spiral-1", "spiral-2"};

// Parses the request; on failure returns false with `error` for INVALID_ARGUMENT.
bool ParseInstances(const PredictRequest& req, std::vector<std::vector<double>>& out,
                    std::string& error) {
  if (req.input().size() > kMaxInput) {
    error = "input larger than 1 MiB";
    return false;
  }
  json j = json::parse(req.input(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    error = "input is not a JSON object";
    return false;
  }
  auto inst = j.find("instances");
  if (inst == j.end() || !inst->is_array() || inst->empty() || inst->size() > kMaxInstances) {
    error = "\"instances\": a list of 1 to 10000 points expected";
    return false;
  }
  for (const auto& p : *inst) {
    if (!p.is_array() || p.size() != example_model::kInputs) {
      error = "each instance is [x0, x1]";
      return false;
    }
    std::vector<double> x;
    for (const auto& v : p) {
      if (!v.is_number() || !std::isfinite(v.get<double>())) {
        error = "instances hold finite numbers";
        return false;
      }
      x.push_back(v.get<double>());
    }
    out.push_back(std::move(x));
  }
  return true;
}

json Predict(const example_model::Mlp& m, const std::vector<double>& x) {
  const auto p = m.Forward(x).back();
  int best = 0;
  for (int k = 1; k < example_model::kClasses; ++k)
    if (p[k] > p[best]) best = k;
  return {{"class", kClassNames[best]}, {"index", best}, {"probabilities", p}};
}

class InferenceService final : public appliance::v1::Inference::CallbackService {
 public:
  explicit InferenceService(example_model::Mlp m) : model_(std::move(m)) {}

  grpc::ServerUnaryReactor* Predict(grpc::CallbackServerContext* ctx, const PredictRequest* req,
                                    PredictResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    std::vector<std::vector<double>> xs;
    std::string error;
    if (!ParseInstances(*req, xs, error)) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, error));
      return reactor;
    }
    json preds = json::array();
    for (const auto& x : xs) preds.push_back(::Predict(model_, x));
    resp->set_output(json{{"predictions", preds}}.dump());
    resp->set_content_type("application/json");
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerWriteReactor<PredictResponse>* PredictStream(grpc::CallbackServerContext*,
                                                           const PredictRequest* req) override {
    class Writer : public grpc::ServerWriteReactor<PredictResponse> {
     public:
      Writer(const example_model::Mlp& m, const PredictRequest& req) : model_(m) {
        std::string error;
        if (!ParseInstances(req, xs_, error)) {
          Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, error));
          return;
        }
        Next();
      }
      void OnWriteDone(bool ok) override {
        if (!ok) {
          Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
          return;
        }
        Next();
      }
      void OnDone() override { delete this; }

     private:
      void Next() {
        if (i_ == xs_.size()) {
          Finish(grpc::Status::OK);
          return;
        }
        resp_.set_output(::Predict(model_, xs_[i_++]).dump());
        resp_.set_content_type("application/json");
        StartWrite(&resp_);
      }
      const example_model::Mlp& model_;
      std::vector<std::vector<double>> xs_;
      size_t i_ = 0;
      PredictResponse resp_;
    };
    return new Writer(model_, *req);
  }

 private:
  example_model::Mlp model_;
};

}  // namespace

int main(int argc, char** argv) {
  // PID 1 of its namespace: exit on SIGTERM/SIGINT (blocked before gRPC starts its threads).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::string socket_path = "/run/model/model.sock", weights = "/model/weights.json";
  // Outside the appliance only (the benchmark's baseline: the model served directly over mTLS).
  std::string listen, tls_cert, tls_key, client_ca;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--socket") {
      socket_path = argv[i + 1];
    } else if (flag == "--weights") {
      weights = argv[i + 1];
    } else if (flag == "--listen") {
      listen = argv[i + 1];
    } else if (flag == "--tls-cert") {
      tls_cert = argv[i + 1];
    } else if (flag == "--tls-key") {
      tls_key = argv[i + 1];
    } else if (flag == "--client-ca") {
      client_ca = argv[i + 1];
    } else {
      std::fprintf(stderr,
                   "usage: example-model-server [--socket PATH | --listen HOST:PORT --tls-cert F "
                   "--tls-key F --client-ca F] [--weights FILE]\n");
      return 2;
    }
  }
  std::ifstream in(weights, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  json j = json::parse(text.str(), nullptr, false);
  example_model::Mlp model;
  std::string error;
  if (!in || !example_model::Mlp::FromJson(j, model, error)) {
    std::fprintf(stderr, "example-model-server: %s: %s\n", weights.c_str(),
                 error.empty() ? "cannot read" : error.c_str());
    return 1;
  }
  InferenceService service(std::move(model));
  grpc::ServerBuilder builder;
  if (listen.empty()) {
    unlink(socket_path.c_str());
    builder.AddListeningPort("unix:" + socket_path, grpc::InsecureServerCredentials());
  } else {
    auto read = [](const std::string& path) {
      std::ifstream f(path, std::ios::binary);
      std::stringstream ss;
      ss << f.rdbuf();
      return ss.str();
    };
    grpc::SslServerCredentialsOptions tls(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    tls.pem_root_certs = read(client_ca);
    tls.pem_key_cert_pairs.push_back({read(tls_key), read(tls_cert)});
    builder.AddListeningPort(listen, grpc::SslServerCredentials(tls));
    socket_path = listen;
  }
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(static_cast<int>(kMaxInput) + 1024);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "example-model-server: cannot listen on %s\n", socket_path.c_str());
    return 1;
  }
  std::fprintf(stderr, "example-model-server: serving on %s\n", socket_path.c_str());
  int sig = 0;
  sigwait(&set, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}
