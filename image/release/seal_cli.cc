#include "seal_cli.h"

#include <openssl/crypto.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "attest/seal/key_file.h"
#include "attest/seal/sealed_image.h"
#include "keys.h"

namespace appliance::release {
namespace {

struct SealArgs {
  std::string image, output, model_id, key_out, passphrase_file;
  uint32_t chunk_size = attest::seal::kDefaultChunkSize;
  bool json = false;
};

int Fail(const absl::Status& st) {
  std::fprintf(stderr, "appliance-release seal-model: %s\n", std::string(st.message()).c_str());
  return absl::IsInvalidArgument(st) || absl::IsAlreadyExists(st) || absl::IsNotFound(st) ? 2 : 1;
}

int RunSeal(const SealArgs& a) {
  if (auto st = attest::seal::CheckModelId(a.model_id); !st.ok()) return Fail(st);
  // The key service's store passphrase: --passphrase-file or $APPLIANCE_KEYD_PASSPHRASE.
  auto passphrase = ReadPassphrase(a.passphrase_file, "APPLIANCE_KEYD_PASSPHRASE");
  if (!passphrase.ok()) return Fail(passphrase.status());
  if (passphrase->size() < attest::seal::kMinKeyPassphrase) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("passphrase: at least ", attest::seal::kMinKeyPassphrase, " characters")));
  }
  std::error_code ec;
  if (std::filesystem::exists(a.key_out, ec)) {
    return Fail(absl::AlreadyExistsError(absl::StrCat("--key-out: ", a.key_out, " exists")));
  }
  // The model key lives in memory only; it leaves this process encrypted under the passphrase.
  auto key = attest::seal::NewModelKey();
  if (!key.ok()) return Fail(key.status());
  auto sealed = attest::seal::SealLayout(a.image, a.output, *key, a.model_id, a.chunk_size);
  if (!sealed.ok()) {
    OPENSSL_cleanse(key->data(), key->size());
    return Fail(sealed.status());
  }
  auto st = attest::seal::WriteModelKeyFile(a.key_out, *key, a.model_id, *passphrase);
  OPENSSL_cleanse(key->data(), key->size());
  if (!st.ok()) {
    std::filesystem::remove_all(a.output, ec);  // a sealed model whose key is lost is useless
    return Fail(st);
  }
  uint64_t sealed_bytes = sealed->model.toc.size;
  for (const auto& b : sealed->model.blobs) sealed_bytes += b.size;
  nlohmann::ordered_json out = {
      {"model_id", a.model_id},
      {"sealed_model", (std::filesystem::path(a.output) / "sealed-model.json").string()},
      {"key_file", a.key_out},
      {"files", sealed->toc.files.size()},
      {"plaintext_bytes", sealed->plaintext_bytes},
      {"sealed_bytes", sealed_bytes},
      {"chunk_size", a.chunk_size}};
  if (a.json) {
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("sealed %s: %zu files, %llu bytes -> %llu sealed bytes in %s\n", a.model_id.c_str(),
                sealed->toc.files.size(), static_cast<unsigned long long>(sealed->plaintext_bytes),
                static_cast<unsigned long long>(sealed_bytes), a.output.c_str());
    std::printf("model key: encrypted under the key service's passphrase in %s\n",
                a.key_out.c_str());
  }
  return 0;
}

}  // namespace

void AddSealCommands(CLI::App& app, int& exit_code) {
  static SealArgs a;
  auto* cmd = app.add_subcommand(
      "seal-model", "seal an OCI image layout for the key release service (docs/sealed-model.md)");
  cmd->add_option("--image", a.image, "the model's OCI image layout directory")->required();
  cmd->add_option("--output", a.output, "the sealed model's directory (created)")->required();
  cmd->add_option("--model-id", a.model_id, "the model's id in the key service")->required();
  cmd->add_option("--key-out", a.key_out, "the model key file for the key service (created)")
      ->required();
  cmd->add_option("--passphrase-file", a.passphrase_file,
                  "the key service's store passphrase (default: $APPLIANCE_KEYD_PASSPHRASE)");
  cmd->add_option("--chunk-size", a.chunk_size, "plaintext bytes per authenticated chunk")
      ->check(CLI::Range(4096u, attest::seal::kMaxChunkSize));
  cmd->add_flag("--json", a.json, "machine-readable output");
  cmd->callback([&exit_code] { exit_code = RunSeal(a); });
}

}  // namespace appliance::release
