#include "static_http_server.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <fstream>
#include <sstream>
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it

namespace attest::testing {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// A self-signed EC P-256 certificate for IP address 127.0.0.1, valid for a day: (cert, key) PEM.
std::pair<std::string, std::string> MakeLoopbackCertificate() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("loopback test server"), -1, -1,
                             0);
  X509_set_issuer_name(cert, name);
  X509_set_pubkey(cert, key);
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
  for (const auto& [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1"},
                                   std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(cert, key, EVP_sha256());
  auto pem = [](auto write) {
    BIO* bio = BIO_new(BIO_s_mem());
    write(bio);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<size_t>(n));
    BIO_free(bio);
    return out;
  };
  std::string cert_pem = pem([&](BIO* b) { PEM_write_bio_X509(b, cert); });
  std::string key_pem =
      pem([&](BIO* b) { PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr); });
  X509_free(cert);
  EVP_PKEY_free(key);
  return {cert_pem, key_pem};
}

}  // namespace

struct StaticHttpServer::Impl {
  std::filesystem::path root;
  std::chrono::milliseconds trickle;
  std::unique_ptr<asio::ssl::context> tls;
  std::string ca_pem;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  std::atomic<bool> stop{false};
  std::thread thread;

  // Waits (at most 10 s, and not past Stop) until the client has sent something: a client that
  // connects and goes silent (a VM killed mid-connection) must not block the server thread, whose
  // join ends every test that uses it. asio's blocking reads wait forever otherwise.
  bool ClientSpeaks(tcp::socket& socket) {
    for (int i = 0; i < 100 && !stop; ++i) {
      pollfd p{socket.native_handle(), POLLIN, 0};
      const int r = ::poll(&p, 1, 100);
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) return false;
    }
    return false;
  }

  void Accept(tcp::socket socket) {
    if (!ClientSpeaks(socket)) return;
    if (!tls) {
      Serve(socket);
      return;
    }
    asio::ssl::stream<tcp::socket> s(std::move(socket), *tls);
    boost::system::error_code ec;
    s.handshake(asio::ssl::stream_base::server, ec);
    if (ec) return;  // the client refused our certificate
    Serve(s);
    s.shutdown(ec);
  }

  template <typename Stream>
  void Serve(Stream& s) {
    boost::system::error_code ec;
    asio::streambuf buf;
    asio::read_until(s, buf, "\r\n\r\n", ec);
    if (ec) return;
    std::istream in(&buf);
    std::string method, target;
    in >> method >> target;
    std::string response;
    const std::filesystem::path file = root / target.substr(1);
    if (target.find("..") == std::string::npos && std::filesystem::is_regular_file(file)) {
      std::ifstream f(file, std::ios::binary);
      std::stringstream body;
      body << f.rdbuf();
      const std::string b = body.str();
      response = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(b.size()) +
                 "\r\nConnection: close\r\n\r\n" + b;
    } else {
      response = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    }
    if (trickle.count() == 0) {
      asio::write(s, asio::buffer(response), ec);
      return;
    }
    for (size_t i = 0; i < response.size() && !stop; ++i) {
      asio::write(s, asio::buffer(&response[i], 1), ec);
      if (ec) return;
      std::this_thread::sleep_for(trickle);
    }
  }
};

StaticHttpServer::StaticHttpServer(std::filesystem::path root, std::chrono::milliseconds trickle,
                                   Tls tls)
    : impl_(std::make_unique<Impl>()) {
  impl_->root = std::move(root);
  impl_->trickle = trickle;
  if (tls == Tls::kYes) {
    auto [cert, key] = MakeLoopbackCertificate();
    impl_->ca_pem = cert;
    impl_->tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    SSL_CTX_set_min_proto_version(impl_->tls->native_handle(), TLS1_3_VERSION);
    impl_->tls->use_certificate_chain(asio::buffer(cert));
    impl_->tls->use_private_key(asio::buffer(key), asio::ssl::context::pem);
  }
  impl_->acceptor.non_blocking(true);
  impl_->thread = std::thread([impl = impl_.get()] {
    while (!impl->stop) {
      boost::system::error_code ec;
      tcp::socket s(impl->ioc);
      impl->acceptor.accept(s, ec);
      if (ec) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      s.non_blocking(false);
      impl->Accept(std::move(s));
    }
  });
}

StaticHttpServer::~StaticHttpServer() {
  impl_->stop = true;
  impl_->thread.join();
}

std::string StaticHttpServer::url() const {
  return std::string(impl_->tls ? "https" : "http") +
         "://127.0.0.1:" + std::to_string(impl_->acceptor.local_endpoint().port());
}

const std::string& StaticHttpServer::ca_pem() const { return impl_->ca_pem; }

}  // namespace attest::testing
