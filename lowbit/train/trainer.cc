#include "lowbit/train/trainer.h"

#include <chrono>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/eval/svg_plot.h"
#include "lowbit/train/lr_schedule.h"
#include "lowbit/train/train_checkpoint.h"

namespace lowbit {

namespace {

LlamaConfig with_vocab(LlamaConfig c, int64_t corpus_vocab) {
  if (c.vocab_size == 0) c.vocab_size = corpus_vocab;
  if (c.vocab_size < corpus_vocab) {
    fail_input(fmt::format("model.vocab_size {} is smaller than the tokenizer's {}", c.vocab_size, corpus_vocab));
  }
  return c;
}

AdamWOptions adamw_options(const TrainConfig& c) {
  return {c.beta1, c.beta2, c.eps, c.weight_decay};
}

// Dynamic loss scaling's growth (as in PyTorch's GradScaler and Apex).
constexpr int64_t kLossScaleGrowthInterval = 2000;

std::shared_ptr<const PrecisionRecipe> parse_recipe(const TrainConfig& c) {
  if (c.precision_json.empty()) return nullptr;
  return std::make_shared<const PrecisionRecipe>(
      PrecisionRecipe::parse(c.precision_json, "the precision recipe", TrainableLlama::linear_names(c.model)));
}

std::string checkpoint_path(const std::string& dir) {
  return (std::filesystem::path(dir) / "checkpoint.safetensors").string();
}

}  // namespace

Trainer::Trainer(TrainConfig config, TokenCorpus corpus, int threads)
    : config_(std::move(config)),
      corpus_(std::move(corpus)),
      threads_(threads),
      recipe_(parse_recipe(config_)),
      model_(with_vocab(config_.model, corpus_.vocab_size), recipe_ ? recipe_->qat : QatSpec{}),
      optimizer_(model_.layout(), adamw_options(config_)),
      master_(recipe_ ? recipe_->master : MasterWeights::kFloat32, model_.params().size()) {
  config_.model.vocab_size = model_.config().vocab_size;
  if (static_cast<int64_t>(corpus_.train.size()) < config_.seq + 1) {
    fail_input(fmt::format("the training split has {} tokens, fewer than one sequence of {} plus 1",
                           corpus_.train.size(), config_.seq));
  }
  if (heldout_window_count(corpus_.heldout, config_.seq, 1) < 1) {
    fail_input(fmt::format("the held-out split has {} tokens, fewer than one sequence of {} plus 1",
                           corpus_.heldout.size(), config_.seq));
  }
  model_.init(config_.seed);
  model_.set_precision(recipe_, config_.seed);
  master_.init(model_.params(), threads_);
  if (recipe_ && recipe_->loss_scale == PrecisionRecipe::LossScale::kDynamic) loss_scale_ = recipe_->initial_loss_scale;
  if (recipe_ && recipe_->loss_scale == PrecisionRecipe::LossScale::kStatic) loss_scale_ = recipe_->static_loss_scale;
}

double Trainer::heldout_loss() {
  const int64_t windows = heldout_window_count(corpus_.heldout, config_.seq, config_.eval_windows);
  std::vector<int32_t> in, tg;
  double sum = 0.0;
  for (int64_t w = 0; w < windows; w += config_.batch) {
    const int64_t count = std::min(config_.batch, windows - w);
    heldout_batch(corpus_.heldout, w, count, config_.seq, in, tg);
    sum += model_.forward(in, tg, count, config_.seq, threads_, nullptr, /*update_state=*/false);
  }
  return sum / static_cast<double>(windows * config_.seq);
}

void Trainer::run(const std::string& out_dir, bool resume, const std::function<void(const TrainProgress&)>& progress,
                  int64_t stop_after) {
  int64_t start = 0;
  if (resume) {
    const ResumedRun r =
        load_train_checkpoint(checkpoint_path(out_dir), config_, model_, optimizer_, {&master_.extra(), {}});
    start = r.step;
    state_from_json(r.state_json, checkpoint_path(out_dir));
    log_ = log_from_json(r.log_json, checkpoint_path(out_dir));
    if (static_cast<int64_t>(log_.size()) != start) {
      fail_input(fmt::format("cannot resume from '{}': its log has {} rows for {} steps", checkpoint_path(out_dir),
                             log_.size(), start));
    }
  }
  const LrSchedule schedule{config_.lr, config_.min_lr, config_.warmup, config_.steps};
  const int64_t tokens_per_step = config_.batch * config_.seq * config_.accum;
  const bool dynamic = recipe_ && recipe_->loss_scale == PrecisionRecipe::LossScale::kDynamic;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<int32_t> in, tg;
  const int64_t end = stop_after > 0 ? std::min(stop_after, config_.steps) : config_.steps;
  std::vector<float> before;
  for (int64_t step = start; step < end; ++step) {
    model_.set_step(step);
    std::fill(model_.grads().begin(), model_.grads().end(), 0.0f);
    // The mean over the step's tokens, times the loss scale.
    const auto loss_scale = static_cast<float>(loss_scale_ / static_cast<double>(tokens_per_step));
    double loss_sum = 0.0;
    for (int64_t micro = 0; micro < config_.accum; ++micro) {
      training_batch(corpus_.train, config_.seed, step, micro, config_.batch, config_.seq, in, tg);
      try {
        loss_sum += model_.forward(in, tg, config_.batch, config_.seq, threads_);
      } catch (const Error& e) {
        fail_input(fmt::format("step {}: {}; the run stops (the last checkpoint is kept)", step + 1, e.what()));
      }
      model_.backward(loss_scale, threads_);
    }
    TrainLogRow row;
    row.step = step + 1;
    row.lr = schedule.at(step);
    row.loss = loss_sum / static_cast<double>(tokens_per_step);
    if (!std::isfinite(row.loss)) {
      fail_input(fmt::format("step {}: the loss is {}; the run stops (the last checkpoint is kept)", step + 1,
                             row.loss));
    }
    row.loss_scale = loss_scale_;
    if (loss_scale_ != 1.0) {
      // Unscale: the loss scale is a power of two when dynamic, so this is exact.
      const auto k = static_cast<float>(1.0 / loss_scale_);
      for (float& g : model_.grads()) g *= k;
    }
    row.grad_norm = gradient_norm(model_.layout(), model_.grads(), threads_);
    if (!std::isfinite(row.grad_norm) && dynamic) {
      // The step is skipped and the scale halved (its gradients overflowed).
      row.skipped = true;
      row.grad_norm = 0;
      loss_scale_ /= 2;
      good_steps_ = 0;
    } else if (!std::isfinite(row.grad_norm)) {
      const ParamTensor* t = first_non_finite_gradient(model_.layout(), model_.grads());
      fail_input(fmt::format("step {}: the gradient of {} holds a NaN or infinity; the run stops (the last "
                             "checkpoint is kept)",
                             step + 1, t ? t->name : "a tensor"));
    }
    if (!row.skipped) {
      // Clip the global norm; the scale is applied in float, element-wise.
      if (config_.grad_clip > 0 && row.grad_norm > config_.grad_clip) {
        const auto k = static_cast<float>(config_.grad_clip / row.grad_norm);
        for (float& g : model_.grads()) g *= k;
      }
      master_.before_update(model_.params(), threads_);
      if (master_.needs_before()) before = model_.params();
      optimizer_.step(model_.params(), model_.grads(), row.lr, threads_);
      master_.after_update(model_.params(), before, threads_);
      if (dynamic && ++good_steps_ == kLossScaleGrowthInterval) {
        loss_scale_ *= 2;
        good_steps_ = 0;
      }
    }
    const bool last = step + 1 == end;
    if ((step + 1) % config_.eval_every == 0 || last) row.heldout = heldout_loss();
    row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    log_.push_back(row);
    if ((step + 1) % config_.checkpoint_every == 0 || last) write_outputs(out_dir, step + 1);
    if (progress) {
      TrainProgress p;
      p.step = step + 1;
      p.steps = config_.steps;
      p.loss = row.loss;
      p.heldout = row.heldout;
      const double done = static_cast<double>(step + 1 - start);
      p.tokens_per_second = done * static_cast<double>(tokens_per_step) / std::max(row.seconds, 1e-9);
      p.eta_seconds = row.seconds / done * static_cast<double>(end - step - 1);
      progress(p);
    }
  }
}

void Trainer::write_outputs(const std::string& out_dir, int64_t step) {
  const std::string log_json = log_to_json(log_);
  save_train_checkpoint(checkpoint_path(out_dir), config_, model_, optimizer_, step, log_json,
                        {&master_.extra(), state_to_json()});
  write_file_atomic((std::filesystem::path(out_dir) / "log.json").string(), log_json.data(), log_json.size());
  PlotSpec plot;
  plot.title = fmt::format("training loss ({} steps of {} tokens)", step, config_.batch * config_.seq * config_.accum);
  plot.x_label = "step";
  plot.y_label = "loss (nats per token)";
  PlotSeries train{"training batch", {}, {}, true}, held{"held-out", {}, {}, true};
  for (const TrainLogRow& r : log_) {
    train.x.push_back(static_cast<double>(r.step));
    train.y.push_back(r.loss);
    if (std::isfinite(r.heldout)) {
      held.x.push_back(static_cast<double>(r.step));
      held.y.push_back(r.heldout);
    }
  }
  plot.series = {train, held};
  const std::string svg = render_svg_plot(plot);
  write_file_atomic((std::filesystem::path(out_dir) / "loss.svg").string(), svg.data(), svg.size());
}

std::string Trainer::log_to_json(const std::vector<TrainLogRow>& rows) {
  nlohmann::json j = nlohmann::json::array();
  for (const TrainLogRow& r : rows) {
    nlohmann::json o = {{"step", r.step}, {"lr", r.lr}, {"loss", r.loss}, {"grad_norm", r.grad_norm},
                        {"seconds", r.seconds}};
    if (std::isfinite(r.heldout)) o["heldout"] = r.heldout;
    if (r.loss_scale != 1.0) o["loss_scale"] = r.loss_scale;
    if (r.skipped) o["skipped"] = true;
    j.push_back(o);
  }
  return j.dump();
}

std::vector<TrainLogRow> Trainer::log_from_json(const std::string& json, const std::string& source) {
  const auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_array()) fail_input(fmt::format("'{}': its training log is not a JSON array", source));
  std::vector<TrainLogRow> rows;
  try {
    for (const auto& o : j) {
      TrainLogRow r;
      r.step = o.at("step").get<int64_t>();
      r.lr = o.at("lr").get<double>();
      r.loss = o.at("loss").get<double>();
      r.grad_norm = o.at("grad_norm").get<double>();
      r.seconds = o.at("seconds").get<double>();
      if (o.contains("heldout")) r.heldout = o.at("heldout").get<double>();
      if (o.contains("loss_scale")) r.loss_scale = o.at("loss_scale").get<double>();
      if (o.contains("skipped")) r.skipped = o.at("skipped").get<bool>();
      rows.push_back(r);
    }
  } catch (const nlohmann::json::exception& e) {
    fail_input(fmt::format("'{}': a row of its training log is malformed: {}", source, e.what()));
  }
  return rows;
}

std::string Trainer::state_to_json() {
  nlohmann::json amax = nlohmann::json::array();
  for (const AmaxHistory& h : model_.amax_histories()) amax.push_back({{"values", h.values}, {"next", h.next}});
  return nlohmann::json{{"loss_scale", loss_scale_}, {"good_steps", good_steps_}, {"amax", amax}}.dump();
}

void Trainer::state_from_json(const std::string& json, const std::string& source) {
  if (json.empty()) return;  // a float32 run's checkpoint
  const auto j = nlohmann::json::parse(json, nullptr, false);
  try {
    if (j.is_discarded()) throw std::runtime_error("not JSON");
    loss_scale_ = j.at("loss_scale").get<double>();
    good_steps_ = j.at("good_steps").get<int64_t>();
    auto& hist = model_.amax_histories();
    const auto& amax = j.at("amax");
    if (amax.size() != hist.size()) throw std::runtime_error("its amax histories do not fit this model");
    for (size_t i = 0; i < hist.size(); ++i) {
      hist[i].values = amax[i].at("values").get<std::vector<float>>();
      hist[i].next = amax[i].at("next").get<int64_t>();
    }
  } catch (const std::exception& e) {
    fail_input(fmt::format("cannot resume from '{}': its precision state is malformed ({})", source, e.what()));
  }
}

}  // namespace lowbit
