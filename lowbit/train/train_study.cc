#include "lowbit/train/train_study.h"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/eval/svg_plot.h"

namespace lowbit {

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

const StudyRow* reference(const std::vector<StudyRow>& rows) {
  for (const StudyRow& r : rows) {
    if (r.name == "fp32") return &r;
  }
  return nullptr;
}

}  // namespace

std::vector<StudyRow> run_train_study(const TrainConfig& base, const TokenCorpus& corpus,
                                      const std::vector<StudyRecipe>& recipes, const std::string& out_dir,
                                      int threads,
                                      const std::function<void(const std::string&, const TrainProgress&)>& progress) {
  std::vector<StudyRow> rows;
  for (const StudyRecipe& r : recipes) {
    TrainConfig c = base;
    c.precision_json = r.json;
    const std::filesystem::path dir = std::filesystem::path(out_dir) / r.name;
    std::error_code ec;
    std::filesystem::create_directory(dir, ec);
    if (ec) fail_io(fmt::format("cannot create '{}': {}", dir.string(), ec.message()));
    StudyRow row;
    row.name = r.name;
    Trainer t(c, corpus, threads);
    try {
      t.run(dir.string(), false, [&](const TrainProgress& p) {
        if (progress) progress(r.name, p);
      });
    } catch (const Error& e) {
      // A recipe that diverges is a result, not a failure of the study.
      if (e.kind() != ErrorKind::kInput) throw;
      row.stopped = e.what();
    }
    row.log = t.log();
    std::vector<double> secs;
    for (size_t i = 1; i < row.log.size(); ++i) {
      if (!std::isfinite(row.log[i].heldout) && !std::isfinite(row.log[i - 1].heldout)) {
        secs.push_back(row.log[i].seconds - row.log[i - 1].seconds);
      }
      row.skipped += row.log[i].skipped;
    }
    if (!row.log.empty()) row.skipped += row.log[0].skipped;
    row.step_seconds = median(secs);
    if (row.stopped.empty() && !row.log.empty()) row.final_heldout = row.log.back().heldout;
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string train_study_svg(const std::vector<StudyRow>& rows, const std::string& title) {
  PlotSpec plot;
  plot.title = title;
  plot.x_label = "step";
  plot.y_label = "held-out loss (nats per token)";
  for (const StudyRow& r : rows) {
    PlotSeries s{r.name, {}, {}, true};
    for (const TrainLogRow& l : r.log) {
      if (std::isfinite(l.heldout)) {
        s.x.push_back(static_cast<double>(l.step));
        s.y.push_back(l.heldout);
      }
    }
    plot.series.push_back(std::move(s));
  }
  return render_svg_plot(plot);
}

std::string train_study_delta_svg(const std::vector<StudyRow>& rows, const std::string& title) {
  const StudyRow* ref = reference(rows);
  if (!ref) return {};
  // fp32's held-out loss by step: the other curves are read at its steps.
  std::vector<std::pair<int64_t, double>> base;
  for (const TrainLogRow& l : ref->log) {
    if (std::isfinite(l.heldout)) base.emplace_back(l.step, l.heldout);
  }
  PlotSpec plot;
  plot.title = title;
  plot.x_label = "step";
  plot.y_label = "held-out loss minus fp32's (nats per token)";
  for (const StudyRow& r : rows) {
    if (&r == ref) continue;
    PlotSeries s{r.name, {}, {}, true};
    for (const TrainLogRow& l : r.log) {
      if (!std::isfinite(l.heldout)) continue;
      for (const auto& [step, loss] : base) {
        if (step != l.step) continue;
        s.x.push_back(static_cast<double>(step));
        s.y.push_back(l.heldout - loss);
      }
    }
    plot.series.push_back(std::move(s));
  }
  return render_svg_plot(plot);
}

std::string train_study_json(const std::vector<StudyRow>& rows) {
  const StudyRow* ref = reference(rows);
  nlohmann::json out = nlohmann::json::array();
  for (const StudyRow& r : rows) {
    nlohmann::json curve = nlohmann::json::array();
    for (const TrainLogRow& l : r.log) {
      if (std::isfinite(l.heldout)) curve.push_back({l.step, l.heldout});
    }
    nlohmann::json j = {{"recipe", r.name}, {"steps", r.log.size()}, {"skipped_steps", r.skipped},
                        {"heldout_curve", curve}};
    j["final_heldout"] = std::isfinite(r.final_heldout) ? nlohmann::json(r.final_heldout) : nlohmann::json(nullptr);
    j["step_seconds"] = std::isfinite(r.step_seconds) ? nlohmann::json(r.step_seconds) : nlohmann::json(nullptr);
    if (ref && std::isfinite(r.final_heldout) && std::isfinite(ref->final_heldout)) {
      j["heldout_minus_fp32"] = r.final_heldout - ref->final_heldout;
    }
    if (ref && std::isfinite(r.step_seconds) && std::isfinite(ref->step_seconds)) {
      j["time_vs_fp32"] = r.step_seconds / ref->step_seconds;
    }
    if (!r.stopped.empty()) j["stopped"] = r.stopped;
    out.push_back(j);
  }
  return out.dump(1);
}

}  // namespace lowbit
