#include "cache/bucket_batch.h"

namespace pdv::cache {

void BucketBatch::Add(uint64_t key, std::string_view field, std::string_view value) {
  writes_.push_back(Write{key, bytes_.size(), static_cast<uint32_t>(field.size()),
                          static_cast<uint32_t>(value.size())});
  bytes_.append(field);
  bytes_.append(value);
}

}  // namespace pdv::cache
