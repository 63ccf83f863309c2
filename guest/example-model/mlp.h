// The example model: a small multi-layer perceptron (2 inputs → 32 tanh → 32 tanh → 3 softmax)
// that classifies points of three interleaved spirals. Shared by the trainer, which fits it at
// build time on data it generates from a fixed seed, and by the server that runs in the container.
#ifndef GUEST_EXAMPLE_MODEL_MLP_H_
#define GUEST_EXAMPLE_MODEL_MLP_H_

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace example_model {

inline constexpr int kInputs = 2;
inline constexpr int kClasses = 3;
inline constexpr char kFormat[] = "appliance-example-mlp-v1";

struct Layer {
  int in = 0, out = 0;
  std::vector<double> w;  // out × in, row-major
  std::vector<double> b;  // out
};

struct Mlp {
  std::vector<Layer> layers;  // hidden layers use tanh, the last one softmax

  // Activations of every layer (acts[0] = input); the last entry holds the class probabilities.
  std::vector<std::vector<double>> Forward(const std::vector<double>& x) const {
    std::vector<std::vector<double>> acts{x};
    for (size_t l = 0; l < layers.size(); ++l) {
      const Layer& L = layers[l];
      std::vector<double> z(L.out);
      for (int o = 0; o < L.out; ++o) {
        double s = L.b[o];
        for (int i = 0; i < L.in; ++i) s += L.w[o * L.in + i] * acts.back()[i];
        z[o] = s;
      }
      if (l + 1 < layers.size()) {
        for (double& v : z) v = std::tanh(v);
      } else {
        double m = z[0];
        for (double v : z) m = std::max(m, v);
        double sum = 0;
        for (double& v : z) sum += (v = std::exp(v - m));
        for (double& v : z) v /= sum;
      }
      acts.push_back(std::move(z));
    }
    return acts;
  }

  nlohmann::json ToJson() const {
    nlohmann::json j;
    j["format"] = kFormat;
    j["classes"] = {"spiral-0", "spiral-1", "spiral-2"};
    for (const auto& L : layers) {
      j["layers"].push_back({{"in", L.in}, {"out", L.out}, {"w", L.w}, {"b", L.b}});
    }
    return j;
  }

  // Strict: the format tag, layer shapes that chain from kInputs to kClasses, finite numbers.
  static bool FromJson(const nlohmann::json& j, Mlp& out, std::string& error) {
    if (!j.is_object() || j.value("format", "") != kFormat) {
      error = std::string("not a ") + kFormat + " model";
      return false;
    }
    auto layers = j.find("layers");
    if (layers == j.end() || !layers->is_array() || layers->empty() || layers->size() > 8) {
      error = "layers: 1 to 8 expected";
      return false;
    }
    int in = kInputs;
    for (const auto& lj : *layers) {
      Layer L;
      if (!lj.is_object() || !lj.value("in", nlohmann::json()).is_number_integer() ||
          !lj.value("out", nlohmann::json()).is_number_integer()) {
        error = "layer: in/out";
        return false;
      }
      L.in = lj["in"].get<int>();
      L.out = lj["out"].get<int>();
      if (L.in != in || L.out < 1 || L.out > 1024 || !lj.contains("w") || !lj.contains("b") ||
          !lj["w"].is_array() || !lj["b"].is_array() ||
          lj["w"].size() != static_cast<size_t>(L.in) * L.out ||
          lj["b"].size() != static_cast<size_t>(L.out)) {
        error = "layer shapes do not chain";
        return false;
      }
      for (const auto& v : lj["w"]) {
        if (!v.is_number() || !std::isfinite(v.get<double>()))
          return error = "w: not finite", false;
        L.w.push_back(v.get<double>());
      }
      for (const auto& v : lj["b"]) {
        if (!v.is_number() || !std::isfinite(v.get<double>()))
          return error = "b: not finite", false;
        L.b.push_back(v.get<double>());
      }
      in = L.out;
      out.layers.push_back(std::move(L));
    }
    if (in != kClasses) {
      error = "the last layer must have 3 outputs";
      return false;
    }
    return true;
  }
};

}  // namespace example_model

#endif  // GUEST_EXAMPLE_MODEL_MLP_H_
