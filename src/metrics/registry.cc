#include "metrics/registry.h"

#include <fmt/format.h>

#include <algorithm>

namespace pdv::metrics {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double v) {
  size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  std::lock_guard lock(mu_);
  ++counts_[i];
  sum_ += v;
  ++count_;
}

Histogram::Snapshot Histogram::Read() const {
  std::lock_guard lock(mu_);
  Snapshot s{bounds_, {}, sum_, count_};
  uint64_t running = 0;
  for (uint64_t c : counts_) s.cumulative.push_back(running += c);
  return s;
}

Gauge* Registry::AddGauge(const std::string& name, const std::string& help) {
  std::lock_guard lock(mu_);
  entries_.push_back({name, help, "gauge", std::make_unique<Gauge>(), nullptr});
  return entries_.back().gauge.get();
}

Gauge* Registry::AddCounter(const std::string& name, const std::string& help) {
  std::lock_guard lock(mu_);
  entries_.push_back({name, help, "counter", std::make_unique<Gauge>(), nullptr});
  return entries_.back().gauge.get();
}

Histogram* Registry::AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<double> bounds) {
  std::lock_guard lock(mu_);
  entries_.push_back(
      {name, help, "histogram", nullptr, std::make_unique<Histogram>(std::move(bounds))});
  return entries_.back().histogram.get();
}

std::string Registry::Expose() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& e : entries_) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", e.name, e.help, e.name, e.type);
    if (e.gauge) {
      out += fmt::format("{} {}\n", e.name, e.gauge->Get());
      continue;
    }
    auto s = e.histogram->Read();
    for (size_t i = 0; i < s.bounds.size(); ++i) {
      out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", e.name, s.bounds[i], s.cumulative[i]);
    }
    out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", e.name,
                       s.cumulative.back(), e.name, s.sum, e.name, s.count);
  }
  return out;
}

}  // namespace pdv::metrics
