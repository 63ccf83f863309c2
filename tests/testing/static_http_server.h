// A static HTTP/1.1 file server on 127.0.0.1 (a port it picks), for the release channel's tests:
// serves a directory like any web server or object store would, or — in trickle mode — sends its
// responses one byte at a time with a pause between bytes (a slow-retrieval attacker). With TLS,
// it serves HTTPS (TLS 1.3) with a self-signed certificate for IP address 127.0.0.1 that it
// generates in memory (ca_pem() for the client to trust). Stops and joins its thread on
// destruction.
#ifndef TESTS_TESTING_STATIC_HTTP_SERVER_H_
#define TESTS_TESTING_STATIC_HTTP_SERVER_H_

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

namespace attest::testing {

class StaticHttpServer {
 public:
  enum class Tls { kNo, kYes };
  explicit StaticHttpServer(std::filesystem::path root,
                            std::chrono::milliseconds trickle = std::chrono::milliseconds(0),
                            Tls tls = Tls::kNo);
  ~StaticHttpServer();
  StaticHttpServer(const StaticHttpServer&) = delete;
  StaticHttpServer& operator=(const StaticHttpServer&) = delete;
  std::string url() const;            // http(s)://127.0.0.1:PORT
  const std::string& ca_pem() const;  // the HTTPS server's certificate (empty without TLS)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace attest::testing

#endif  // TESTS_TESTING_STATIC_HTTP_SERVER_H_
