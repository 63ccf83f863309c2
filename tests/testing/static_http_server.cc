#include "static_http_server.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <fstream>
#include <sstream>
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it

namespace attest::testing {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct StaticHttpServer::Impl {
  std::filesystem::path root;
  std::chrono::milliseconds trickle;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  std::atomic<bool> stop{false};
  std::thread thread;

  void Serve(tcp::socket s) {
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

StaticHttpServer::StaticHttpServer(std::filesystem::path root, std::chrono::milliseconds trickle)
    : impl_(std::make_unique<Impl>()) {
  impl_->root = std::move(root);
  impl_->trickle = trickle;
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
      impl->Serve(std::move(s));
    }
  });
}

StaticHttpServer::~StaticHttpServer() {
  impl_->stop = true;
  impl_->thread.join();
}

std::string StaticHttpServer::url() const {
  return "http://127.0.0.1:" + std::to_string(impl_->acceptor.local_endpoint().port());
}

}  // namespace attest::testing
