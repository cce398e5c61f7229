#include "api/request.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <nlohmann/json.hpp>

namespace pdv::api {

Routed RouteRequest(std::string_view method, std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  auto only_get = [&](Route r, std::string_view arg = {}) {
    return method == "GET" ? Routed{r, arg} : Routed{Route::kMethodNotAllowed, {}};
  };
  if (path == "/health") return only_get(Route::kHealth);
  if (path == "/ready") return only_get(Route::kReady);
  if (path == "/metrics") return only_get(Route::kMetrics);
  if (path == "/openapi.json") return only_get(Route::kOpenApi);
  if (path == "/status") return only_get(Route::kStatusPage);
  if (path == "/status.json") return only_get(Route::kStatusJson);
  constexpr std::string_view kCustomer = "/v1/clientes/";
  if (path.rfind(kCustomer, 0) == 0 && path.size() > kCustomer.size() &&
      path.find('/', kCustomer.size()) == std::string_view::npos) {
    return only_get(Route::kCustomer, path.substr(kCustomer.size()));
  }
  constexpr std::string_view kLegacy = "/cliente/", kLegacyEnd = "/status";
  if (path.rfind(kLegacy, 0) == 0 && path.size() > kLegacy.size() + kLegacyEnd.size() &&
      path.substr(path.size() - kLegacyEnd.size()) == kLegacyEnd) {
    std::string_view id =
        path.substr(kLegacy.size(), path.size() - kLegacy.size() - kLegacyEnd.size());
    if (id.find('/') == std::string_view::npos) return only_get(Route::kLegacyStatus, id);
  }
  return {Route::kNotFound, {}};
}

const char* RouteName(Route r) {
  switch (r) {
    case Route::kCustomer:
      return "customer";
    case Route::kLegacyStatus:
      return "legacy_status";
    case Route::kHealth:
      return "health";
    case Route::kReady:
      return "ready";
    case Route::kMetrics:
      return "metrics";
    case Route::kOpenApi:
      return "openapi";
    case Route::kStatusPage:
      return "status_page";
    case Route::kStatusJson:
      return "status_json";
    case Route::kNotFound:
      return "not_found";
    case Route::kMethodNotAllowed:
      return "method_not_allowed";
  }
  return "unknown";
}

Eligibility Evaluate(const cache::CustomerRecord& r, int64_t now) {
  if (!r.ativo) return {false, "INATIVO"};
  if (!r.opt_in_marketing) return {false, "SEM_OPT_IN"};
  if (!r.elegivel_a_partir_de || *r.elegivel_a_partir_de > now) return {false, "EM_CARENCIA"};
  return {true, std::nullopt};
}

namespace {
// Writes the 20 characters of "2025-01-31T12:00:00Z" at `text`.
void WriteRfc3339(char* text, int64_t s) {
  // Calendar arithmetic and digits by hand: two per answer, and fmt's chrono formatting
  // (a format string parsed each time) showed in perf.
  using namespace std::chrono;
  const sys_seconds at{seconds(s)};
  const sys_days day = floor<days>(at);
  const year_month_day ymd(day);
  const hh_mm_ss<seconds> time(at - day);
  auto put = [text](size_t at_char, unsigned value, int width) {
    for (int i = width - 1; i >= 0; --i, value /= 10) text[at_char + i] = char('0' + value % 10);
  };
  put(0, static_cast<unsigned>(static_cast<int>(ymd.year())), 4);
  put(5, static_cast<unsigned>(ymd.month()), 2);
  put(8, static_cast<unsigned>(ymd.day()), 2);
  put(11, static_cast<unsigned>(time.hours().count()), 2);
  put(14, static_cast<unsigned>(time.minutes().count()), 2);
  put(17, static_cast<unsigned>(time.seconds().count()), 2);
  text[4] = text[7] = '-';
  text[10] = 'T';
  text[13] = text[16] = ':';
  text[19] = 'Z';
}
}  // namespace

std::string Rfc3339(int64_t s) {
  std::string text(20, '\0');
  WriteRfc3339(text.data(), s);
  return text;
}

void AppendRfc3339Json(std::string* out, int64_t s) {
  char text[22];
  text[0] = text[21] = '"';
  WriteRfc3339(text + 1, s);
  out->append(text, sizeof(text));
}

namespace {

// A JSON string literal: the hot path builds its answer with fmt, not a DOM.
void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20) {
      fmt::format_to(std::back_inserter(*out), "\\u{:04x}", u);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

}  // namespace

Result<AnswerFields> ParseAnswerFields(std::string_view list) {
  AnswerFields f{false, false, false};
  if (list == "none") return f;
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view name = list.substr(0, comma);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    if (name == "primeiro_nome") {
      f.primeiro_nome = true;
    } else if (name == "ticket_medio_estimado") {
      f.ticket_medio_estimado = true;
    } else if (name == "origem_campanha") {
      f.origem_campanha = true;
    } else if (!name.empty()) {
      return Status::Error(
          fmt::format("api.fields: unknown field '{}' (optional fields: primeiro_nome, "
                      "ticket_medio_estimado, origem_campanha; or none)",
                      name));
    }
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return f;
}

std::string CustomerJson(const cache::CustomerRecord& r, int64_t now, const AnswerFields& fields) {
  std::string out;
  out.reserve(320);
  AppendCustomerJson(&out, r, now, fields);
  return out;
}

void AppendCustomerJson(std::string* out_ptr, const cache::CustomerRecord& r, int64_t now,
                        const AnswerFields& fields) {
  std::string& out = *out_ptr;
  Eligibility e = Evaluate(r, now);
  out += "{\"cliente_id\":\"";
  cache::AppendUuidText(&out, r.cliente_id);
  out += e.eligible ? "\",\"elegivel_promocao\":true,\"motivo\":"
                    : "\",\"elegivel_promocao\":false,\"motivo\":";
  if (e.motivo) {
    AppendJsonString(&out, *e.motivo);
  } else {
    out += "null";
  }
  out += ",\"elegivel_a_partir_de\":";
  if (r.elegivel_a_partir_de) {
    AppendRfc3339Json(&out, *r.elegivel_a_partir_de);
  } else {
    out += "null";
  }
  out += r.ativo ? ",\"status_clube\":\"ATIVO\"" : ",\"status_clube\":\"INATIVO\"";
  out += r.opt_in_marketing ? ",\"opt_in_marketing\":true" : ",\"opt_in_marketing\":false";
  if (fields.primeiro_nome) {
    out += ",\"primeiro_nome\":";
    AppendJsonString(&out, r.primeiro_nome);
  }
  if (fields.ticket_medio_estimado) {
    fmt::format_to(std::back_inserter(out), ",\"ticket_medio_estimado\":{}",
                   static_cast<double>(r.ticket_centavos) / 100.0);
  }
  if (fields.origem_campanha) {
    out += ",\"origem_campanha\":";
    AppendJsonString(&out, r.origem_campanha);
  }
  out += ",\"atualizado_em\":";
  AppendRfc3339Json(&out, r.atualizado_em);
  out += '}';
}

std::string LegacyJson(std::string_view cliente_id, const cache::CustomerRecord* r, int64_t now,
                       double latency_ms) {
  nlohmann::ordered_json j;
  j["cliente_id"] = cliente_id;
  if (r == nullptr) {
    j["status"] = "CADASTRO INEXISTENTE";
  } else {
    j["status_clube"] = r->ativo ? "ATIVO" : "INATIVO";
    j["origem_campanha"] = r->origem_campanha;
    j["cliente_elegivel_promocao"] = Evaluate(*r, now).eligible;
  }
  j["fonte"] = "redis";
  j["latencia_ms"] = latency_ms;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string ErrorJson(std::string_view erro, std::string_view mensagem) {
  nlohmann::ordered_json j;
  j["erro"] = erro;
  j["mensagem"] = mensagem;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool IsChunkedOnly(std::string_view transfer_encoding) {
  int codings = 0;
  bool chunked = false;
  size_t start = 0;
  while (start <= transfer_encoding.size()) {
    size_t comma = transfer_encoding.find(',', start);
    if (comma == std::string_view::npos) comma = transfer_encoding.size();
    std::string_view element = transfer_encoding.substr(start, comma - start);
    while (!element.empty() && (element.front() == ' ' || element.front() == '\t')) {
      element.remove_prefix(1);
    }
    while (!element.empty() && (element.back() == ' ' || element.back() == '\t')) {
      element.remove_suffix(1);
    }
    if (!element.empty()) {
      ++codings;
      constexpr std::string_view kChunked = "chunked";
      chunked = element.size() == kChunked.size() &&
                std::equal(element.begin(), element.end(), kChunked.begin(), [](char a, char b) {
                  return (a >= 'A' && a <= 'Z' ? a - 'A' + 'a' : a) == b;
                });
    }
    start = comma + 1;
  }
  return codings == 1 && chunked;
}

}  // namespace pdv::api
