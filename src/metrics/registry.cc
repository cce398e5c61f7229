#include "metrics/registry.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace pdv::metrics {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i] = 0;
}

void Histogram::Observe(double v) {
  size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  double cur = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
  count_.fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s{bounds_, {}, sum_.load(), 0};
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) s.cumulative.push_back(running += counts_[i].load());
  s.count = running;
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
  // Metrics of one family (the name before its {labels}) share one HELP and TYPE,
  // printed where the family first appears.
  std::vector<const Entry*> order;
  std::map<std::string, std::vector<const Entry*>> families;
  for (const auto& e : entries_) {
    std::string family = e.name.substr(0, e.name.find('{'));
    auto& members = families[family];
    if (members.empty()) order.push_back(&e);
    members.push_back(&e);
  }
  std::string out;
  for (const Entry* first : order) {
    std::string family = first->name.substr(0, first->name.find('{'));
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", family, first->help, family, first->type);
    for (const Entry* e : families[family]) {
      std::string labels;
      if (auto brace = e->name.find('{'); brace != std::string::npos) {
        labels = e->name.substr(brace + 1, e->name.size() - brace - 2);
      }
      if (e->gauge) {
        out += fmt::format("{} {}\n", e->name, e->gauge->Get());
        continue;
      }
      auto s = e->histogram->Read();
      std::string sep = labels.empty() ? "" : ",";
      std::string plain = labels.empty() ? "" : "{" + labels + "}";
      for (size_t i = 0; i < s.bounds.size(); ++i) {
        out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", family, labels, sep, s.bounds[i],
                           s.cumulative[i]);
      }
      out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n{}_sum{} {}\n{}_count{} {}\n", family,
                         labels, sep, s.cumulative.back(), family, plain, s.sum, family, plain,
                         s.count);
    }
  }
  return out;
}

}  // namespace pdv::metrics
