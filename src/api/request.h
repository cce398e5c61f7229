#pragma once

// The pure part of the API: routing, eligibility and response bodies. No I/O; the
// fuzz target and unit tests drive it directly.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cache/record.h"

namespace pdv::api {

enum class Route {
  kCustomer,      // GET /v1/clientes/{cpf}
  kLegacyStatus,  // GET /cliente/{cliente_id}/status
  kHealth,
  kReady,
  kMetrics,
  kOpenApi,
  kStatusPage,
  kStatusJson,
  kNotFound,
  kMethodNotAllowed,
};

struct Routed {
  Route route = Route::kNotFound;
  std::string_view arg;  // the path parameter (points into the target)
};

// `target` is the request target (path and query); the query is ignored.
Routed RouteRequest(std::string_view method, std::string_view target);
// Whether a request's Transfer-Encoding, its field values joined with ",", is the one
// coding the API decodes: "chunked" alone (case-insensitive, list whitespace and empty
// elements allowed). Anything else ("gzip, chunked", "chunked, chunked", "identity") is
// a body whose length the API cannot know: RFC 9112 section 6.1 says answer 400 and
// close, since reading on would let the next request be smuggled inside this one.
bool IsChunkedOnly(std::string_view transfer_encoding);
// "customer", "legacy_status", ... for metrics labels.
const char* RouteName(Route r);

struct Eligibility {
  bool eligible = false;
  std::optional<std::string_view> motivo;  // INATIVO | SEM_OPT_IN | EM_CARENCIA
};
// The business rule at `now` (Unix seconds): ATIVO, opted in, and past the grace period.
Eligibility Evaluate(const cache::CustomerRecord& r, int64_t now);

// "2025-01-31T12:00:00Z".
std::string Rfc3339(int64_t unix_seconds);
// The same text, quoted as a JSON string, appended to `out`.
void AppendRfc3339Json(std::string* out, int64_t unix_seconds);

// The optional fields of an answer (api.fields): an operator may leave any out, as data
// minimisation (LGPD art. 6, III). The contract's default has all three.
struct AnswerFields {
  bool primeiro_nome = true;
  bool ticket_medio_estimado = true;
  bool origem_campanha = true;
};
// api.fields' value: a comma-separated list of those names ("" or "none": none of them);
// an unknown name is an error that names it and the allowed ones.
Result<AnswerFields> ParseAnswerFields(std::string_view list);

// The /v1/clientes/{cpf} body.
std::string CustomerJson(const cache::CustomerRecord& r, int64_t now,
                         const AnswerFields& fields = {});
// The same answer appended to `out` (the API reuses one buffer per connection).
void AppendCustomerJson(std::string* out, const cache::CustomerRecord& r, int64_t now,
                        const AnswerFields& fields);
// The original platform's /cliente/{id}/status body (found or not).
std::string LegacyJson(std::string_view cliente_id, const cache::CustomerRecord* r, int64_t now,
                       double latency_ms);
// {"erro": ..., "mensagem": ...}
std::string ErrorJson(std::string_view erro, std::string_view mensagem);

}  // namespace pdv::api
