// Trains the example model at build time: three interleaved spirals (2-D points with noise)
// generated from a fixed seed, a 2-32-32-3 MLP fitted by mini-batch SGD with momentum, weights
// written as JSON. Deterministic: the same binary gives the same bytes (no threads, a fixed
// seed, our own uniform/normal draws from std::mt19937_64's specified output).
//
//   example-model-train OUT.json   (prints train/test accuracy on stderr)
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

#include "mlp.h"

namespace {

using example_model::Layer;
using example_model::Mlp;

struct Rng {
  std::mt19937_64 gen{20261126};
  double Uniform() { return static_cast<double>(gen() >> 11) * 0x1.0p-53; }
  double Normal() {  // Box-Muller
    double u1 = Uniform(), u2 = Uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
  }
};

struct Sample {
  std::vector<double> x;
  int y;
};

std::vector<Sample> Spirals(Rng& rng, int per_class) {
  std::vector<Sample> out;
  for (int c = 0; c < example_model::kClasses; ++c) {
    for (int i = 0; i < per_class; ++i) {
      double r = static_cast<double>(i) / per_class;
      double t = c * 2 * M_PI / 3 + r * 4.0 + rng.Normal() * 0.15;
      out.push_back({{r * std::cos(t), r * std::sin(t)}, c});
    }
  }
  for (size_t i = out.size() - 1; i > 0; --i) std::swap(out[i], out[rng.gen() % (i + 1)]);
  return out;
}

double Accuracy(const Mlp& m, const std::vector<Sample>& data) {
  int right = 0;
  for (const auto& s : data) {
    const auto p = m.Forward(s.x).back();
    int best = 0;
    for (int k = 1; k < example_model::kClasses; ++k)
      if (p[k] > p[best]) best = k;
    right += best == s.y;
  }
  return static_cast<double>(right) / data.size();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: example-model-train OUT.json\n");
    return 2;
  }
  Rng rng;
  auto train = Spirals(rng, 600);
  auto test = Spirals(rng, 200);
  Mlp m;
  const int sizes[] = {example_model::kInputs, 32, 32, example_model::kClasses};
  for (int l = 0; l < 3; ++l) {
    Layer L;
    L.in = sizes[l];
    L.out = sizes[l + 1];
    const double scale = std::sqrt(1.0 / L.in);
    for (int i = 0; i < L.in * L.out; ++i) L.w.push_back(rng.Normal() * scale * 1.5);
    L.b.assign(L.out, 0.0);
    m.layers.push_back(L);
  }
  std::vector<Layer> vel = m.layers;
  for (auto& v : vel) {
    std::fill(v.w.begin(), v.w.end(), 0.0);
    std::fill(v.b.begin(), v.b.end(), 0.0);
  }
  const int kEpochs = 300, kBatch = 32;
  const double kMomentum = 0.9;
  for (int epoch = 0; epoch < kEpochs; ++epoch) {
    const double lr = 0.05 * (1.0 - 0.9 * epoch / kEpochs);
    for (size_t start = 0; start < train.size(); start += kBatch) {
      std::vector<Layer> grad = vel;
      for (auto& g : grad) {
        std::fill(g.w.begin(), g.w.end(), 0.0);
        std::fill(g.b.begin(), g.b.end(), 0.0);
      }
      const size_t end = std::min(train.size(), start + kBatch);
      for (size_t n = start; n < end; ++n) {
        auto acts = m.Forward(train[n].x);
        std::vector<double> delta = acts.back();  // softmax + cross-entropy gradient
        delta[train[n].y] -= 1.0;
        for (int l = static_cast<int>(m.layers.size()) - 1; l >= 0; --l) {
          const Layer& L = m.layers[l];
          const auto& a = acts[l];
          std::vector<double> prev(L.in, 0.0);
          for (int o = 0; o < L.out; ++o) {
            grad[l].b[o] += delta[o];
            for (int i = 0; i < L.in; ++i) {
              grad[l].w[o * L.in + i] += delta[o] * a[i];
              prev[i] += L.w[o * L.in + i] * delta[o];
            }
          }
          if (l > 0) {
            for (int i = 0; i < L.in; ++i) prev[i] *= 1.0 - a[i] * a[i];  // tanh'
          }
          delta = std::move(prev);
        }
      }
      const double k = 1.0 / static_cast<double>(end - start);
      for (size_t l = 0; l < m.layers.size(); ++l) {
        for (size_t i = 0; i < m.layers[l].w.size(); ++i) {
          vel[l].w[i] = kMomentum * vel[l].w[i] - lr * grad[l].w[i] * k;
          m.layers[l].w[i] += vel[l].w[i];
        }
        for (size_t i = 0; i < m.layers[l].b.size(); ++i) {
          vel[l].b[i] = kMomentum * vel[l].b[i] - lr * grad[l].b[i] * k;
          m.layers[l].b[i] += vel[l].b[i];
        }
      }
    }
  }
  const double train_acc = Accuracy(m, train), test_acc = Accuracy(m, test);
  auto j = m.ToJson();
  j["train_accuracy"] = train_acc;
  j["test_accuracy"] = test_acc;
  std::ofstream out(argv[1], std::ios::binary | std::ios::trunc);
  out << j.dump() << "\n";
  if (!out.flush()) {
    std::fprintf(stderr, "example-model-train: cannot write %s\n", argv[1]);
    return 1;
  }
  std::fprintf(stderr,
               "example-model-train: 3-spiral MLP, train accuracy %.3f, test accuracy %.3f\n",
               train_acc, test_acc);
  return 0;
}
