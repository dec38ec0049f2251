#include "lowbit/model/linear.h"

#include <fmt/format.h>

#include <utility>

#include "lowbit/core/error.h"
#include "lowbit/kernels/matmul.h"

namespace lowbit {

Linear::Linear(std::string name, std::vector<float> weight, int64_t out, int64_t in, std::vector<float> bias)
    : name_(std::move(name)),
      weight_(std::make_shared<const std::vector<float>>(std::move(weight))),
      bias_(std::move(bias)),
      out_(out),
      in_(in) {
  if (out < 0 || in < 0 || weight_->size() != static_cast<size_t>(out * in)) {
    throw Error(ErrorKind::kInput, fmt::format("layer '{}': weight has {} values, not {} x {}", name_, weight_->size(),
                                               out, in));
  }
  if (!bias_.empty() && bias_.size() != static_cast<size_t>(out)) {
    throw Error(ErrorKind::kInput, fmt::format("layer '{}': bias has {} values, not {}", name_, bias_.size(), out));
  }
}

Linear Linear::with_weight(std::vector<float> weight) const {
  if (weight.size() != weight_->size()) {
    fail_internal(fmt::format("layer '{}': a new weight of {} values for {} x {}", name_, weight.size(), out_, in_));
  }
  return Linear(name_, std::move(weight), out_, in_, bias_);
}

void Linear::set_packed(std::shared_ptr<const PackedWeight> packed) {
  if (packed && (packed->rows() != out_ || packed->cols() != in_)) {
    fail_internal(fmt::format("layer '{}': a packed weight of {} x {} for a {} x {} layer", name_, packed->rows(),
                              packed->cols(), out_, in_));
  }
  packed_ = std::move(packed);
}

void Linear::forward_one(std::span<const OneToken> jobs, int threads) {
  constexpr size_t kMax = 8;
  bool packed = jobs.size() <= kMax;
  for (const OneToken& j : jobs) packed = packed && j.linear->packed_;
  if (!packed) {
    for (const OneToken& j : jobs) j.linear->forward(j.x, 1, j.y, threads);
    return;
  }
  PackedWeight::Product products[kMax];
  for (size_t i = 0; i < jobs.size(); ++i) products[i] = {jobs[i].linear->packed_.get(), jobs[i].x, jobs[i].y};
  PackedWeight::multiply_all(std::span<const PackedWeight::Product>(products, jobs.size()), threads);
  for (const OneToken& j : jobs) {
    for (size_t r = 0; r < j.linear->bias_.size(); ++r) j.y[r] += j.linear->bias_[r];
  }
}

void Linear::forward(const float* x, int64_t n, float* y, int threads) const {
  if (n == 1 && packed_) {
    packed_->multiply(x, y, threads);
    for (size_t j = 0; j < bias_.size(); ++j) y[j] += bias_[j];
    return;
  }
  matmul_nt(x, n, in_, in_, weight_->data(), out_, bias_.empty() ? nullptr : bias_.data(), y, out_, threads);
}

}  // namespace lowbit
