#include "cdc/timeline_history.h"

#include <charconv>
#include <string>

namespace pdv::cdc {

std::optional<Lsn> TimelineSwitchPoint(std::string_view history, int timeline) {
  while (!history.empty()) {
    size_t eol = history.find('\n');
    std::string_view line = history.substr(0, eol);
    history = eol == std::string_view::npos ? std::string_view() : history.substr(eol + 1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    int tli = 0;
    auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), tli);
    if (ec != std::errc() || tli != timeline) continue;
    std::string_view rest = line.substr(static_cast<size_t>(end - line.data()));
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
    std::string_view lsn = rest.substr(0, rest.find_first_of(" \t"));
    return ParseLsn(std::string(lsn));
  }
  return std::nullopt;
}

}  // namespace pdv::cdc
