#include "transform/secret_mask.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace pdv::transform {

SecretMask SecretMask::FromEnvironment(const char* const* env) {
  std::vector<std::string> values;
  for (const char* const* e = env; e && *e; ++e) {
    std::string_view entry(*e);
    if (!entry.starts_with("DBT_ENV_SECRET_")) continue;
    size_t eq = entry.find('=');
    if (eq != std::string_view::npos) values.emplace_back(entry.substr(eq + 1));
  }
  return Of(std::move(values));
}

SecretMask SecretMask::Of(std::vector<std::string> values) {
  SecretMask mask;
  for (auto& v : values) {
    if (v.empty()) continue;
    std::string json =
        nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    json = json.substr(1, json.size() - 2);
    if (json != v) mask.spellings_.push_back(std::move(json));
    mask.spellings_.push_back(std::move(v));
  }
  std::sort(mask.spellings_.begin(), mask.spellings_.end(),
            [](const std::string& a, const std::string& b) {
              return a.size() != b.size() ? a.size() > b.size() : a < b;
            });
  mask.spellings_.erase(std::unique(mask.spellings_.begin(), mask.spellings_.end()),
                        mask.spellings_.end());
  return mask;
}

std::string SecretMask::Scrub(std::string_view text) const {
  std::string out(text);
  for (const auto& secret : spellings_) {
    for (size_t at = out.find(secret); at != std::string::npos;
         at = out.find(secret, at + sizeof(kScrubbed) - 1)) {
      out.replace(at, secret.size(), kScrubbed);
    }
  }
  return out;
}

}  // namespace pdv::transform
