#include "cdc/toast_carry.h"

#include <fmt/format.h>

#include <vector>

#include "cdc/copy_text.h"

namespace pdv::cdc {
namespace {

// Rows shorter than this (as COPY text) are not kept: see ToastCarry::Remember.
constexpr size_t kRememberedRowMinBytes = 1024;

}  // namespace

std::string ToastCarry::KeyOf(const Change& c) {
  const auto& cols = c.relation->columns;
  std::string key;
  for (size_t i = 0; i < cols.size() && i < c.tuple.size(); ++i) {
    if (!cols[i].key) continue;
    key += c.tuple[i].data;
    key += '\x1f';
  }
  return key;
}

void ToastCarry::Remember(char op, const std::string& key, const std::string& fields) {
  bool keep = (op == 'c' || op == 'u') && fields.size() >= kRememberedRowMinBytes;
  if (!keep && rows_.empty()) return;
  auto it = rows_.find(key);
  if (it != rows_.end()) {
    rows_bytes_ -= it->first.size() + it->second.size();
    if (!keep) {
      rows_.erase(it);
      return;
    }
    it->second = fields;
  } else if (keep) {
    it = rows_.emplace(key, fields).first;
  } else {
    return;
  }
  rows_bytes_ += it->first.size() + it->second.size();
  if (rows_bytes_ > memory_bytes_) Forget();
}

void ToastCarry::Forget() {
  rows_.clear();
  rows_.rehash(0);
  rows_bytes_ = 0;
}

pdv::Result<std::string> ToastCarry::CarriedForward(const Change& c, const std::string& key,
                                                    size_t r, const std::string& column,
                                                    warehouse::RawBatch& batch) {
  if (auto row = rows_.find(key); row != rows_.end()) {
    return std::string(CopyField(row->second, static_cast<int>(r)));
  }
  std::vector<warehouse::RawColumn> key_columns;
  std::vector<std::string> key_values;
  for (size_t i = 0; i < c.relation->columns.size() && i < c.tuple.size(); ++i) {
    if (!c.relation->columns[i].key) continue;
    key_columns.push_back(c.relation->columns[i]);
    key_values.push_back(c.tuple[i].data);
  }
  // On the batch, not the warehouse: the batch's connection may have its COPY open.
  auto latest = batch.LatestValue(key_columns, key_values, column);
  if (!latest.ok()) return latest.status();
  if (!*latest) {
    return Status::Error(fmt::format(
        "cdc: update of {} leaves column {} unchanged (TOAST) but RAW has no earlier value", table_,
        column));
  }
  std::string field;
  AppendCopyField(&field, **latest);
  return field;
}

}  // namespace pdv::cdc
