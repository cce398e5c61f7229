#include "api/deadlines.h"

namespace pdv::api {

uint32_t Deadlines::Add() {
  if (!free_.empty()) {
    uint32_t slot = free_.back();
    free_.pop_back();
    return slot;
  }
  at_.push_back({});
  return static_cast<uint32_t>(at_.size() - 1);
}

void Deadlines::Remove(uint32_t slot) {
  at_[slot] = {};
  free_.push_back(slot);
}

}  // namespace pdv::api
