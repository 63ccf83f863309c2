// A static HTTP/1.1 file server on 127.0.0.1 (a port it picks), for the release channel's tests:
// serves a directory like any web server or object store would, or — in trickle mode — sends its
// responses one byte at a time with a pause between bytes (a slow-retrieval attacker). Stops and
// joins its thread on destruction.
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
  explicit StaticHttpServer(std::filesystem::path root,
                            std::chrono::milliseconds trickle = std::chrono::milliseconds(0));
  ~StaticHttpServer();
  StaticHttpServer(const StaticHttpServer&) = delete;
  StaticHttpServer& operator=(const StaticHttpServer&) = delete;
  std::string url() const;  // http://127.0.0.1:PORT

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace attest::testing

#endif  // TESTS_TESTING_STATIC_HTTP_SERVER_H_
