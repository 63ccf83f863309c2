// HTTP(S) fetching for the TUF client (Boost.Beast over Boost.Asio, TLS through OpenSSL): one
// deadline for the whole request, the timeout plus 1 s per MiB allowed (a server that trickles
// bytes cannot hold the client longer: slow retrieval), the body bounded by the caller's limit
// (endless data) and streamed to the caller in 1 MiB pieces, redirects refused (a mirror is a
// fixed place). HTTPS: TLS 1.3 only, the server's
// certificate verified against the system's trust store (or a given CA file) and its name (DNS name
// or IP address) checked, SNI sent.
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <functional>
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "attest/status.h"
#include "attest/tuf/client.h"

namespace attest::tuf {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr size_t kChunk = 1 << 20;  // a streamed body's pieces

struct Url {
  bool tls = false;
  std::string host, port = "80", target = "/";
};

absl::StatusOr<Url> ParseHttpUrl(const std::string& url) {
  Url u;
  std::string rest;
  if (absl::StartsWith(url, "http://")) {
    rest = url.substr(7);
  } else if (absl::StartsWith(url, "https://")) {
    rest = url.substr(8);
    u.tls = true;
    u.port = "443";
  } else {
    return absl::InvalidArgumentError(absl::StrCat(url, ": only http(s):// URLs are fetched here"));
  }
  const size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) u.target = rest.substr(slash);
  if (!authority.empty() && authority[0] == '[') {  // [::1]:port
    const size_t close = authority.find(']');
    if (close == std::string::npos) return absl::InvalidArgumentError(url + ": bad IPv6 host");
    u.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':')
      u.port = authority.substr(close + 2);
  } else {
    const size_t colon = authority.rfind(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) u.port = authority.substr(colon + 1);
  }
  uint32_t port = 0;
  if (u.host.empty() || !absl::SimpleAtoi(u.port, &port) || port == 0 || port > 65535) {
    return absl::InvalidArgumentError(url + ": bad host or port");
  }
  return u;
}

class HttpFetcher : public Fetcher {
 public:
  HttpFetcher(absl::Duration timeout, std::string ca_file)
      : timeout_(timeout), ca_file_(std::move(ca_file)) {}

  absl::Status FetchTo(const std::string& url, size_t max_bytes, const Sink& sink) override {
    if (!absl::StartsWith(url, "http://") && !absl::StartsWith(url, "https://")) {
      return MakeFileFetcher()->FetchTo(url, max_bytes, sink);
    }
    auto u = ParseHttpUrl(url);
    if (!u.ok()) return u.status();
    asio::io_context ioc;
    if (!u->tls) {
      beast::tcp_stream stream(ioc);
      return Get(ioc, stream, stream, *u, url, max_bytes, sink, nullptr);
    }
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_3_VERSION);
    boost::system::error_code ec;
    if (ca_file_.empty()) {
      ctx.set_default_verify_paths(ec);
    } else {
      ctx.load_verify_file(ca_file_, ec);
    }
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls: cannot load the trust anchors ", ca_file_, ": ", ec.message()));
    }
    ctx.set_verify_mode(asio::ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
    SSL* ssl = stream.native_handle();
    // The name the certificate must carry: an IP address literal or a DNS name (also sent as SNI).
    boost::system::error_code addr_ec;
    asio::ip::make_address(u->host, addr_ec);
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (!addr_ec) {
      X509_VERIFY_PARAM_set1_ip_asc(param, u->host.c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, u->host.c_str(), 0);
      SSL_set_tlsext_host_name(ssl, u->host.c_str());
    }
    return Get(ioc, stream, beast::get_lowest_layer(stream), *u, url, max_bytes, sink, &stream);
  }

 private:
  // One GET over `stream` (plain, or TLS whose handshake runs after the connect), the body
  // streamed to `sink` in pieces of at most kChunk bytes.
  template <typename Stream>
  absl::Status Get(asio::io_context& ioc, Stream& stream, beast::tcp_stream& tcp, const Url& u,
                   const std::string& url, size_t max_bytes, const Sink& sink,
                   beast::ssl_stream<beast::tcp_stream>* tls) {
    tcp::resolver resolver(ioc);
    // The whole request's deadline: the timeout, plus one second per MiB the response may have
    // (a floor on the average rate, 1 MiB/s, so that a large target can arrive and a trickle
    // cannot hold the client: slow retrieval).
    const auto allowed = timeout_ + absl::Seconds(static_cast<int64_t>(max_bytes >> 20));
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(absl::ToInt64Milliseconds(allowed));
    tcp.expires_at(deadline);
    http::request<http::empty_body> req{http::verb::get, u.target, 11};
    req.set(http::field::host, u.host);
    req.set(http::field::user_agent, "appliance-tuf-client");
    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(max_bytes);
    parser.header_limit(16 * 1024);
    beast::error_code result;
    bool timed_out = false, oversize = false, no_length = false, handshake_failed = false;
    absl::Status sink_status;
    size_t received = 0;
    std::vector<uint8_t> chunk(kChunk);
    // The body, a piece at a time (Beast's buffer_body: need_buffer means the piece is full).
    std::function<void()> read_body = [&] {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      http::async_read(stream, buffer, parser, [&](beast::error_code ec, size_t) {
        if (ec == http::error::need_buffer) ec = {};
        if (ec) {
          result = ec;
          return;
        }
        const size_t got = chunk.size() - parser.get().body().size;
        received += got;
        if (got > 0 && parser.get().result_int() == 200) {
          sink_status = sink(std::span<const uint8_t>(chunk.data(), got));
          if (!sink_status.ok()) return;
        }
        if (!parser.is_done()) read_body();
      });
    };
    auto request = [&] {
      http::async_write(stream, req, [&](beast::error_code ec3, size_t) {
        if (ec3) {
          result = ec3;
          return;
        }
        // The header first: a 200 must say how long its body is, within the limit.
        http::async_read_header(stream, buffer, parser, [&](beast::error_code ec4, size_t) {
          if (ec4) {
            result = ec4;
            return;
          }
          if (parser.get().result_int() == 200) {
            const auto length = parser.content_length();
            if (!length) {
              no_length = true;
              return;
            }
            if (*length > max_bytes) {
              oversize = true;
              return;
            }
          }
          read_body();
        });
      });
    };
    resolver.async_resolve(
        u.host, u.port, [&](beast::error_code ec, tcp::resolver::results_type r) {
          if (ec) {
            result = ec;
            return;
          }
          tcp.async_connect(r, [&](beast::error_code ec2, const tcp::endpoint&) {
            if (ec2) {
              result = ec2;
              return;
            }
            if (tls == nullptr) {
              request();
              return;
            }
            tls->async_handshake(asio::ssl::stream_base::client, [&](beast::error_code ec3) {
              if (ec3) {
                result = ec3;
                handshake_failed = true;
                return;
              }
              request();
            });
          });
        });
    ioc.run_until(deadline + std::chrono::milliseconds(100));
    if (!ioc.stopped()) {
      timed_out = true;
      beast::error_code ignored;
      tcp.socket().close(ignored);
    }
    if (timed_out || result == beast::error::timeout) {
      return absl::FailedPreconditionError(
          absl::StrCat("tuf.download.timeout: ", url, " did not arrive within ",
                       absl::FormatDuration(allowed), " (slow retrieval)"));
    }
    if (handshake_failed) {
      std::string why = result.message();
      if (tls != nullptr) {
        const long verify = SSL_get_verify_result(tls->native_handle());
        if (verify != X509_V_OK) why = X509_verify_cert_error_string(verify);
      }
      return absl::UnavailableError(
          absl::StrCat("tls: ", url, ": the server is not authenticated: ", why));
    }
    if (!sink_status.ok()) return sink_status;
    if (oversize || result == http::error::body_limit || received > max_bytes) {
      return absl::FailedPreconditionError(absl::StrCat("tuf.download.size: ", url,
                                                        " is larger than the limit of ", max_bytes,
                                                        " bytes (endless data)"));
    }
    if (result && result != asio::ssl::error::stream_truncated) {
      return absl::UnavailableError(absl::StrCat(url, ": ", result.message()));
    }
    if (no_length) {
      return absl::UnavailableError(absl::StrCat(url, ": the response has no Content-Length"));
    }
    const auto status = parser.get().result_int();
    if (status == 404) return absl::NotFoundError(absl::StrCat(url, ": not found"));
    if (status != 200) {
      return absl::UnavailableError(absl::StrCat(url, ": HTTP status ", status));
    }
    if (!parser.is_done())
      return absl::UnavailableError(absl::StrCat(url, ": incomplete response"));
    return absl::OkStatus();
  }

  absl::Duration timeout_;
  std::string ca_file_;
};

}  // namespace

std::unique_ptr<Fetcher> MakeHttpFetcher(absl::Duration timeout, std::string ca_file) {
  return std::make_unique<HttpFetcher>(timeout, std::move(ca_file));
}

}  // namespace attest::tuf
