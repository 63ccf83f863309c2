// appliance-keyd (issue 10, docs/sealed-model.md): the key release service.
//   appliance-keyd init --store DIR [--passphrase-file F] [--json]
//   appliance-keyd add-model --store DIR --key F --policy F --reference F [--replace]
//                  [--passphrase-file F]
//   appliance-keyd serve --store DIR [--listen HOST:PORT] [--port-file F] [--roots DIR]
//                  [--passphrase-file F]
// The store passphrase: --passphrase-file or $APPLIANCE_KEYD_PASSPHRASE. Exit 0 done, 1 the
// operation failed, 2 usage error or malformed input.
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "attest/files.h"
#include "attest/keyd/keyd.h"
#include "nlohmann/json.hpp"

namespace {

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "appliance-keyd: %s\n", std::string(s.message()).c_str());
  return absl::IsInvalidArgument(s) || absl::IsNotFound(s) ? 2 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  umask(077);
  CLI::App app{"appliance-keyd: releases model keys to attested appliances"};
  std::string store, passphrase_file, key, policy, reference, listen = "127.0.0.1:0", port_file,
                                                              roots;
  bool json = false, replace = false;
  app.add_option("--passphrase-file", passphrase_file,
                 "the store passphrase (default: $APPLIANCE_KEYD_PASSPHRASE)");
  auto* init = app.add_subcommand("init", "create the store and the service's TLS identity");
  init->add_option("--store", store, "store directory")->required();
  init->add_flag("--json", json, "machine-readable output");
  auto* add = app.add_subcommand("add-model", "add a sealed model's key, policy and reference");
  add->add_option("--store", store, "store directory")->required();
  add->add_option("--key", key, "the model key file (appliance-release seal-model --key-out)")
      ->required();
  add->add_option("--policy", policy, "the model's release policy (JSON)")->required();
  add->add_option("--reference", reference, "reference values (JSON)")->required();
  add->add_flag("--replace", replace, "replace a model already in the store");
  auto* serve = app.add_subcommand("serve", "serve key releases until SIGTERM");
  serve->add_option("--store", store, "store directory")->required();
  serve->add_option("--listen", listen, "HOST:PORT (port 0: pick one)");
  serve->add_option("--port-file", port_file, "write the port here once listening");
  serve->add_option("--roots", roots,
                    "extra trust anchors, read at each request: *.pem SEV-SNP, tdx_*.pem TDX");
  for (auto* c : {init, add, serve}) {
    c->add_option("--passphrase-file", passphrase_file,
                  "the store passphrase (default: $APPLIANCE_KEYD_PASSPHRASE)");
  }
  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  auto passphrase = attest::ReadPassphrase(passphrase_file, "APPLIANCE_KEYD_PASSPHRASE");
  if (!passphrase.ok()) return Fail(passphrase.status());
  if (*init) {
    auto spki = attest::keyd::InitStore(store, *passphrase);
    if (!spki.ok()) return Fail(spki.status());
    if (json) {
      std::printf("%s\n", nlohmann::json({{"store", store},
                                          {"tls_cert", store + "/tls-cert.pem"},
                                          {"spki_sha256", *spki}})
                              .dump()
                              .c_str());
    } else {
      std::printf(
          "key service store: %s\nTLS key SPKI sha256: %s (pin it in launch "
          "configurations: sealed_model.key_service_spki_sha256)\n",
          store.c_str(), spki->c_str());
    }
    return 0;
  }
  if (*add) {
    auto s = attest::keyd::AddModel(store, *passphrase, key, policy, reference, replace);
    if (!s.ok()) return Fail(s);
    std::printf("model added to %s\n", store.c_str());
    return 0;
  }
  attest::keyd::ServeOptions o;
  o.store = store;
  o.passphrase = *passphrase;
  o.listen = listen;
  o.port_file = port_file;
  o.roots_dir = roots;
  return attest::keyd::Serve(o);
}
