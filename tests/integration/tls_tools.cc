#include "tls_tools.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <stdexcept>

#include "absl/time/time.h"
#include "appliance_fixture.h"
#include "attest/client/tls.h"

namespace attest::testing {
namespace {

// A peer closing mid-write must be an error here, not the end of the test process.
[[maybe_unused]] const bool kIgnoreSigpipe = (signal(SIGPIPE, SIG_IGN), true);

int ConnectLoopback(int port) {
  int fd = LoopbackSocket(port, /*bind_it=*/false);
  if (fd < 0) return -1;
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

std::string Errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {  // NOLINT(runtime/int)
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out += std::string(out.empty() ? "" : "; ") + buf;
  }
  return out;
}

void UseIdentity(SSL_CTX* ctx, const std::string& cert_pem, const std::string& key_pem) {
  BIO* cb = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
  BIO* kb = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
  SSL_CTX_use_certificate(ctx, cert);
  SSL_CTX_use_PrivateKey(ctx, key);
  X509_free(cert);
  EVP_PKEY_free(key);
  BIO_free(cb);
  BIO_free(kb);
}

const unsigned char kH2[] = {2, 'h', '2'};

SSL_CTX* ClientCtx(const std::string& cert_pem, const std::string& key_pem, int min_v, int max_v) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  // This process may have pinned TLS 1.3 (PinTls13Only): a deliberate TLS 1.2 client undoes it.
  SSL_CTX_clear_options(ctx, SSL_OP_NO_TLSv1_2);
  SSL_CTX_set_min_proto_version(ctx, min_v);
  SSL_CTX_set_max_proto_version(ctx, max_v);
  SSL_CTX_set_alpn_protos(ctx, kH2, sizeof(kH2));
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  if (!cert_pem.empty()) UseIdentity(ctx, cert_pem, key_pem);
  return ctx;
}

// HTTP/2 client preface + an empty SETTINGS frame, so that an accepting server answers.
const char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

}  // namespace

TlsResult TryTls(int port, const std::string& cert_pem, const std::string& key_pem, int min_version,
                 int max_version) {
  TlsResult r;
  int fd = ConnectLoopback(port);
  if (fd < 0) {
    r.error = "connect failed";
    return r;
  }
  SSL_CTX* ctx = ClientCtx(cert_pem, key_pem, min_version, max_version);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1) {
    r.error = "handshake failed: " + Errors();
  } else {
    r.protocol = SSL_get_version(ssl);
    if (X509* peer = SSL_get1_peer_certificate(ssl)) {
      unsigned char* der = nullptr;
      int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(peer), &der);
      if (n > 0) r.server_spki_der.assign(der, der + n);
      OPENSSL_free(der);
      X509_free(peer);
    }
    SSL_write(ssl, kPreface, sizeof(kPreface) - 1);
    char buf[64];
    int n = SSL_read(ssl, buf, sizeof(buf));
    if (n > 0) {
      r.accepted = true;
    } else {
      r.error = "server closed the session after the handshake: " + Errors();
    }
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  close(fd);
  return r;
}

TlsProxy::TlsProxy(int upstream_port, const std::string& cert_pem, const std::string& key_pem)
    : upstream_port_(upstream_port), cert_pem_(cert_pem), key_pem_(key_pem) {
  auto id = attest::client::GenerateSelfSignedIdentity("tls-terminating-proxy", absl::Hours(1));
  if (!id.ok()) throw std::runtime_error("proxy identity");
  own_key_pem_ = id->key_pem;
  own_cert_pem_ = id->cert_pem;
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      listen(listen_fd_, 16) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    throw std::runtime_error("proxy listen");
  }
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

TlsProxy::~TlsProxy() {
  stop_ = true;
  shutdown(listen_fd_, SHUT_RDWR);
  close(listen_fd_);
  acceptor_.join();
  for (auto& w : workers_) w.join();
}

void TlsProxy::AcceptLoop() {
  for (int i = 0; i < 64 && !stop_; ++i) {  // bounded: a test makes a handful of connections
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) {
      --i;
      continue;
    }
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    workers_.emplace_back([this, fd] { Serve(fd); });
  }
}

void TlsProxy::Serve(int fd) {
  SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
  UseIdentity(sctx, own_cert_pem_, own_key_pem_);
  SSL_CTX_set_verify(sctx, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
  SSL_CTX_set_alpn_select_cb(
      sctx,
      [](SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
         unsigned int inlen, void*) {
        unsigned char* o = nullptr;
        if (SSL_select_next_proto(&o, outlen, kH2, sizeof(kH2), in, inlen) !=
            OPENSSL_NPN_NEGOTIATED) {
          return SSL_TLSEXT_ERR_NOACK;
        }
        *out = o;
        return SSL_TLSEXT_ERR_OK;
      },
      nullptr);
  SSL* down = SSL_new(sctx);
  SSL_set_fd(down, fd);
  SSL_CTX* cctx = ClientCtx(cert_pem_, key_pem_, TLS1_3_VERSION, TLS1_3_VERSION);
  SSL* up = SSL_new(cctx);
  int ufd = ConnectLoopback(upstream_port_);
  bool ok = SSL_accept(down) == 1 && ufd >= 0;
  if (ok) {
    SSL_set_fd(up, ufd);
    ok = SSL_connect(up) == 1;
  }
  char buf[16384];
  for (int idle = 0; ok && !stop_ && idle < 300;) {  // ≤ 30 s idle
    pollfd p[2] = {{fd, POLLIN, 0}, {ufd, POLLIN, 0}};
    int n = (SSL_pending(down) > 0 || SSL_pending(up) > 0) ? 1 : poll(p, 2, 100);
    if (n == 0) {
      ++idle;
      continue;
    }
    idle = 0;
    if (SSL_pending(down) > 0 || (p[0].revents & (POLLIN | POLLHUP))) {
      int r = SSL_read(down, buf, sizeof(buf));
      if (r <= 0 || SSL_write(up, buf, r) <= 0) break;
    }
    if (SSL_pending(up) > 0 || (p[1].revents & (POLLIN | POLLHUP))) {
      int r = SSL_read(up, buf, sizeof(buf));
      if (r <= 0 || SSL_write(down, buf, r) <= 0) break;
    }
  }
  SSL_free(up);
  SSL_free(down);
  SSL_CTX_free(cctx);
  SSL_CTX_free(sctx);
  if (ufd >= 0) close(ufd);
  close(fd);
}

}  // namespace attest::testing
