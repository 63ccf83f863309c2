// Raw TLS clients and a TLS-terminating proxy (OpenSSL) for the attack tests.
#ifndef TESTS_INTEGRATION_TLS_TOOLS_H_
#define TESTS_INTEGRATION_TLS_TOOLS_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace attest::testing {

struct TlsResult {
  bool accepted = false;  // the server completed the handshake and sent HTTP/2 data
  std::string protocol;   // negotiated version, when the handshake completed
  std::string error;
  std::vector<uint8_t> server_spki_der;
};

// Connects to 127.0.0.1:port with ALPN h2, optionally a client certificate, and the given
// version range (0x0303 = TLS 1.2, 0x0304 = TLS 1.3), then waits for the server's first bytes.
TlsResult TryTls(int port, const std::string& cert_pem, const std::string& key_pem, int min_version,
                 int max_version);

// Accepts TLS on its own port with its own self-signed key (and any client certificate), and
// forwards the bytes over a second TLS connection to the upstream with an allowed client
// certificate: a man in the middle holding a valid coordinator identity.
class TlsProxy {
 public:
  TlsProxy(int upstream_port, const std::string& cert_pem, const std::string& key_pem);
  ~TlsProxy();
  int port() const { return port_; }

 private:
  void AcceptLoop();
  void Serve(int fd);
  int upstream_port_;
  std::string cert_pem_, key_pem_, own_key_pem_, own_cert_pem_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::vector<std::thread> workers_;
};

}  // namespace attest::testing

#endif  // TESTS_INTEGRATION_TLS_TOOLS_H_
