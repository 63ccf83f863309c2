// HTTP fetching for the TUF client (Boost.Beast over Boost.Asio): one deadline for the whole
// request (a server that trickles bytes cannot hold the client longer: slow retrieval), the body
// bounded by the caller's limit (endless data), redirects refused (a mirror is a fixed place).
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "attest/tuf/client.h"

namespace attest::tuf {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct Url {
  std::string host, port = "80", target = "/";
};

absl::StatusOr<Url> ParseHttpUrl(const std::string& url) {
  if (!absl::StartsWith(url, "http://")) {
    return absl::InvalidArgumentError(absl::StrCat(url, ": only http:// URLs are fetched here"));
  }
  Url u;
  std::string rest = url.substr(7);
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
  explicit HttpFetcher(absl::Duration timeout) : timeout_(timeout) {}

  absl::StatusOr<std::vector<uint8_t>> Fetch(const std::string& url, size_t max_bytes) override {
    if (!absl::StartsWith(url, "http://")) return MakeFileFetcher()->Fetch(url, max_bytes);
    auto u = ParseHttpUrl(url);
    if (!u.ok()) return u.status();
    asio::io_context ioc;
    tcp::resolver resolver(ioc);
    beast::tcp_stream stream(ioc);
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout_));
    stream.expires_at(deadline);
    http::request<http::empty_body> req{http::verb::get, u->target, 11};
    req.set(http::field::host, u->host);
    req.set(http::field::user_agent, "appliance-tuf-client");
    beast::flat_buffer buffer;
    http::response_parser<http::vector_body<uint8_t>> parser;
    parser.body_limit(max_bytes);
    parser.header_limit(16 * 1024);
    beast::error_code result;
    bool timed_out = false, oversize = false, no_length = false;
    resolver.async_resolve(
        u->host, u->port, [&](beast::error_code ec, tcp::resolver::results_type r) {
          if (ec) {
            result = ec;
            return;
          }
          stream.async_connect(r, [&](beast::error_code ec2, const tcp::endpoint&) {
            if (ec2) {
              result = ec2;
              return;
            }
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
                http::async_read(stream, buffer, parser,
                                 [&](beast::error_code ec5, size_t) { result = ec5; });
              });
            });
          });
        });
    ioc.run_until(deadline + std::chrono::milliseconds(100));
    if (!ioc.stopped()) {
      timed_out = true;
      beast::error_code ignored;
      stream.socket().close(ignored);
    }
    if (timed_out || result == beast::error::timeout) {
      return absl::FailedPreconditionError(
          absl::StrCat("tuf.download.timeout: ", url, " did not arrive within ",
                       absl::FormatDuration(timeout_), " (slow retrieval)"));
    }
    if (oversize || result == http::error::body_limit || parser.get().body().size() > max_bytes) {
      return absl::FailedPreconditionError(absl::StrCat("tuf.download.size: ", url,
                                                        " is larger than the limit of ", max_bytes,
                                                        " bytes (endless data)"));
    }
    if (result) return absl::UnavailableError(absl::StrCat(url, ": ", result.message()));
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
    return std::move(parser.get().body());
  }

 private:
  absl::Duration timeout_;
};

}  // namespace

std::unique_ptr<Fetcher> MakeHttpFetcher(absl::Duration timeout) {
  return std::make_unique<HttpFetcher>(timeout);
}

}  // namespace attest::tuf
