#include "supervisor/azure_imds.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"
#include "nlohmann/json.hpp"

namespace appliance::supervisor {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr size_t kMaxResponse = 64 * 1024;

class ImdsTdQuoteService : public TdQuoteService {
 public:
  explicit ImdsTdQuoteService(std::shared_ptr<AzureImds> imds) : imds_(std::move(imds)) {}
  absl::StatusOr<std::vector<uint8_t>> Quote(std::span<const uint8_t> td_report) override {
    return imds_->TdQuote(td_report);
  }

 private:
  std::shared_ptr<AzureImds> imds_;
};

}  // namespace

AzureImds::AzureImds(std::string base_url, absl::Duration timeout) : timeout_(timeout) {
  std::string rest = absl::StartsWith(base_url, "http://") ? base_url.substr(7) : base_url;
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  const size_t colon = rest.rfind(':');
  host_ = colon == std::string::npos ? rest : rest.substr(0, colon);
  port_ = colon == std::string::npos ? "80" : rest.substr(colon + 1);
}

absl::StatusOr<std::string> AzureImds::Request(bool post, const std::string& target,
                                               const std::string& body) const {
  try {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout_)));
    tcp::resolver resolver(ioc);
    stream.connect(resolver.resolve(host_, port_));
    http::request<http::string_body> req{post ? http::verb::post : http::verb::get, target, 11};
    req.set(http::field::host, host_);
    req.set("Metadata", "true");
    if (post) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
    }
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponse);
    http::read(stream, buffer, parser);
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    const auto& res = parser.get();
    if (res.result() != http::status::ok) {
      return absl::UnavailableError(
          absl::StrCat("Azure IMDS ", target, ": HTTP ", res.result_int()));
    }
    return res.body();
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("Azure IMDS ", host_, ":", port_, target, ": ", e.what()));
  }
}

absl::StatusOr<std::vector<std::vector<uint8_t>>> ParseThimResponse(absl::string_view text) {
  if (text.size() > kMaxResponse) return absl::InvalidArgumentError("Azure THIM: too large");
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (!j.is_object() || !j.contains("vcekCert") || !j["vcekCert"].is_string()) {
    return absl::InvalidArgumentError("Azure THIM: no vcekCert in the response");
  }
  std::string pem = j["vcekCert"].get<std::string>();
  if (j.contains("certificateChain")) {
    if (!j["certificateChain"].is_string()) {
      return absl::InvalidArgumentError("Azure THIM: certificateChain is not a string");
    }
    pem += "\n" + j["certificateChain"].get<std::string>();
  }
  return attest::ParseCertificates(
      std::span(reinterpret_cast<const uint8_t*>(pem.data()), pem.size()), "Azure THIM");
}

absl::StatusOr<std::vector<uint8_t>> ParseTdQuoteResponse(absl::string_view text) {
  if (text.size() > kMaxResponse) return absl::InvalidArgumentError("Azure tdquote: too large");
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (!j.is_object() || !j.contains("quote") || !j["quote"].is_string()) {
    return absl::InvalidArgumentError("Azure IMDS tdquote: no quote in the response");
  }
  auto quote = attest::Base64UrlDecode(j["quote"].get<std::string>());
  if (!quote.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Azure IMDS tdquote: ", quote.status().message()));
  }
  if (quote->empty()) return absl::InvalidArgumentError("Azure IMDS tdquote: empty quote");
  return quote;
}

absl::StatusOr<std::vector<std::vector<uint8_t>>> AzureImds::VcekChain() const {
  ASSIGN_OR_RETURN(auto text, Request(false, "/metadata/THIM/amd/certification", ""));
  return ParseThimResponse(text);
}

absl::StatusOr<std::vector<uint8_t>> AzureImds::TdQuote(std::span<const uint8_t> td_report) const {
  const nlohmann::json req = {{"report", attest::Base64UrlEncode(td_report)}};
  ASSIGN_OR_RETURN(auto text, Request(true, "/acc/tdquote", req.dump()));
  return ParseTdQuoteResponse(text);
}

std::shared_ptr<TdQuoteService> MakeImdsTdQuoteService(std::shared_ptr<AzureImds> imds) {
  return std::make_shared<ImdsTdQuoteService>(std::move(imds));
}

}  // namespace appliance::supervisor
