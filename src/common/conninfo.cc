#include "common/conninfo.h"

#include <libpq-fe.h>

#include <memory>

namespace pdv::pg {
namespace {

struct FreeOptions {
  void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};
struct FreeText {
  void operator()(char* text) const { PQfreemem(text); }
};

}  // namespace

pdv::Result<Conninfo> Conninfo::Parse(const std::string& text) {
  char* raw_error = nullptr;
  std::unique_ptr<PQconninfoOption, FreeOptions> options(PQconninfoParse(text.c_str(), &raw_error));
  std::unique_ptr<char, FreeText> error(raw_error);
  if (!options) {
    std::string why = error ? error.get() : "out of memory";
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    return Status::Error(why);
  }
  Conninfo parsed;
  for (const PQconninfoOption* o = options.get(); o->keyword; ++o) {
    if (o->val) parsed.values_.emplace(o->keyword, o->val);
  }
  return parsed;
}

std::string Conninfo::Get(std::string_view keyword) const {
  auto it = values_.find(keyword);
  return it == values_.end() ? std::string() : it->second;
}

}  // namespace pdv::pg
