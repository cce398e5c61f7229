#include "cdc/copy_text.h"

#include <chrono>

namespace pdv::cdc {

void AppendCopyField(std::string* out, std::string_view v) {
  // Runs without a special character are appended whole.
  while (!v.empty()) {
    size_t plain = v.find_first_of("\\\t\n\r");
    out->append(v.substr(0, plain));
    if (plain == std::string_view::npos) return;
    switch (v[plain]) {
      case '\\':
        *out += "\\\\";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\n':
        *out += "\\n";
        break;
      default:
        *out += "\\r";
    }
    v.remove_prefix(plain + 1);
  }
}

std::string_view CopyField(std::string_view line, int index) {
  for (int i = 0; i < index; ++i) {
    size_t tab = line.find('\t');
    if (tab == std::string_view::npos) return {};
    line.remove_prefix(tab + 1);
  }
  return line.substr(0, line.find('\t'));
}

int64_t NowUnixUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace pdv::cdc
