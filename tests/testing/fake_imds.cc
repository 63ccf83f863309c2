#include "fake_imds.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it

#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "nlohmann/json.hpp"

namespace attest::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct FakeImds::Impl {
  Options options;
  int listen_fd = -1;
  int port = 0;
  std::atomic<bool> stop{false};
  std::atomic<int> requests{0};
  std::atomic<int> thim_requests{0};
  std::thread thread;

  http::response<http::string_body> Handle(const http::request<http::string_body>& req) {
    http::response<http::string_body> res{http::status::not_found, req.version()};
    res.set(http::field::content_type, "application/json");
    if (req.method() == http::verb::get && req.target() == "/metadata/THIM/amd/certification") {
      ++thim_requests;
      if (req["Metadata"] != "true") {
        res.result(http::status::bad_request);
      } else {
        std::vector<std::vector<uint8_t>> rest(options.vcek_chain.begin() + 1,
                                               options.vcek_chain.end());
        auto vcek = CertificatesToPem({options.vcek_chain.front()});
        auto chain = CertificatesToPem(rest);
        res.result(http::status::ok);
        res.body() =
            nlohmann::json{
                {"vcekCert", *vcek}, {"certificateChain", *chain}, {"tcbm", "7308000000000003"}}
                .dump();
      }
    } else if (req.method() == http::verb::post && req.target() == "/acc/tdquote") {
      auto j = nlohmann::json::parse(req.body(), nullptr, false);
      const std::string b64 = j.is_object() && j.contains("report") && j["report"].is_string()
                                  ? j["report"].get<std::string>()
                                  : "";
      auto report = Base64UrlDecode(b64);
      auto quote = report.ok() && options.td_quote
                       ? options.td_quote(*report)
                       : absl::StatusOr<std::vector<uint8_t>>(absl::InvalidArgumentError("bad"));
      if (quote.ok()) {
        res.result(http::status::ok);
        res.body() = nlohmann::json{{"quote", Base64UrlEncode(*quote)}}.dump();
      } else {
        res.result(http::status::bad_request);
      }
    }
    res.prepare_payload();
    return res;
  }

  void Serve() {
    while (!stop) {
      pollfd p{listen_fd, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      timeval tv{10, 0};  // a silent client cannot hold the thread past 10 s
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      try {
        asio::io_context ioc;
        tcp::socket sock(ioc);
        sock.assign(tcp::v4(), fd);
        beast::flat_buffer buffer;
        http::request_parser<http::string_body> parser;
        parser.body_limit(1 << 20);
        http::read(sock, buffer, parser);
        ++requests;
        http::write(sock, Handle(parser.get()));
        beast::error_code ec;
        sock.shutdown(tcp::socket::shutdown_both, ec);
      } catch (const std::exception&) {
        // a client that went away: nothing to answer
      }
    }
  }
};

FakeImds::FakeImds(Options options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(impl_->listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      listen(impl_->listen_fd, 8) != 0 ||
      getsockname(impl_->listen_fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    throw std::runtime_error("FakeImds: cannot listen on 127.0.0.1");
  }
  impl_->port = ntohs(a.sin_port);
  Impl* raw = impl_.get();
  impl_->thread = std::thread([raw] { raw->Serve(); });
}

FakeImds::~FakeImds() {
  impl_->stop = true;
  if (impl_->thread.joinable()) impl_->thread.join();
  close(impl_->listen_fd);
}

std::string FakeImds::url() const { return absl::StrCat("http://127.0.0.1:", impl_->port); }
int FakeImds::requests() const { return impl_->requests; }
int FakeImds::thim_requests() const { return impl_->thim_requests; }

}  // namespace attest::testing
