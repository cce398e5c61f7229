#include "api/session.h"

#include <hiredis/hiredis.h>

#include <nlohmann/json.hpp>

#include "api/openapi.h"
#include "api/response.h"
#include "api/status_page.h"
#include "cache/record.h"
#include "common/cpf.h"
#include "monitor/monitor.h"

namespace pdv::api {
namespace {

constexpr size_t kHeaderLimit = 8 * 1024;
// The first read of a request: a whole GET fits (the parser reads on for the rest).
constexpr size_t kFirstRead = 2048;
constexpr size_t kBodyLimit = 1024;

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// No Transfer-Encoding, or chunked alone (every field of it: a second field could hide
// another coding).
bool TransferEncodingAccepted(const http::request<http::string_body>& req) {
  auto [first, last] = req.equal_range(http::field::transfer_encoding);
  if (first == last) return true;
  std::string codings;
  for (auto it = first; it != last; ++it) {
    if (!codings.empty()) codings += ',';
    codings.append(it->value().data(), it->value().size());
  }
  return IsChunkedOnly(codings);
}

}  // namespace

template <class Stream>
Session<Stream>::~Session() {
  w_.Unregister(slot_);
  w_.shared().address_connections.Release(peer_);
  w_.shared().connections--;
  w_.shared().open_connections->Add(-1);
}

template <class Stream>
void Session<Stream>::Start() {
  slot_ = w_.Register(this->shared_from_this());
  if constexpr (kTls) {
    // The handshake must complete within the read timeout, like a request.
    SetDeadline(Clock::now() + w_.shared().options.read_timeout);
    auto self = this->shared_from_this();
    stream_.async_handshake(asio::ssl::stream_base::server, [this, self](beast::error_code ec) {
      if (ec) {
        w_.shared().tls_failures->Add(1);
        return Close();
      }
      Read();
    });
  } else {
    Read();
  }
}

template <class Stream>
void Session<Stream>::Shutdown() {
  closing_ = true;
  if (!busy_) Close();
}

template <class Stream>
void Session<Stream>::Expire() {
  Close();
}

template <class Stream>
void Session<Stream>::Close() {
  ShutdownSocket();
  beast::error_code ignored;
  LowestSocket().close(ignored);
}

template <class Stream>
void Session<Stream>::ShutdownSocket() {
  beast::error_code ignored;
  LowestSocket().shutdown(tcp::socket::shutdown_both, ignored);
}

template <class Stream>
void Session<Stream>::Read() {
  parser_.emplace();
  parser_->header_limit(kHeaderLimit);
  parser_->body_limit(kBodyLimit);
  // A pipelined request already began: its time runs from now.
  if (buffer_.size() > 0) return ReadRequest();
  // Waiting for a request may last the idle timeout. Its first byte is read here, not
  // by the parser, so that the read timeout is counted from it: a client that trickles
  // a byte now and then must not hold the connection past that.
  SetDeadline(Clock::now() + w_.shared().options.idle_timeout);
  auto self = this->shared_from_this();
  stream_.async_read_some(buffer_.prepare(kFirstRead),
                          [this, self](beast::error_code ec, size_t n) {
                            if (ec) return OnReadError(ec);
                            buffer_.commit(n);
                            ReadRequest();
                          });
}

// The request whose first byte is in buffer_: headers and body within the read timeout,
// one deadline for both, however the bytes come.
template <class Stream>
void Session<Stream>::ReadRequest() {
  SetDeadline(Clock::now() + w_.shared().options.read_timeout);
  auto self = this->shared_from_this();
  http::async_read_header(stream_, buffer_, *parser_, [this, self](beast::error_code ec, size_t) {
    if (ec) return OnReadError(ec);
    busy_ = true;
    if (!TransferEncodingAccepted(parser_->get())) {
      return Reply(
          http::status::bad_request,
          ErrorJson("REQUISICAO_INVALIDA", "unsupported Transfer-Encoding (only chunked alone)"),
          true);
    }
    if (parser_->is_done()) return Begin();  // no body (a GET): no second read to wait for
    http::async_read(stream_, buffer_, *parser_, [this, self](beast::error_code ec2, size_t) {
      if (ec2) return OnReadError(ec2);
      Begin();
    });
  });
}

template <class Stream>
void Session<Stream>::Begin() {
  SetDeadline({});
  started_ = Clock::now();
  Handle(parser_->get());
}

template <class Stream>
void Session<Stream>::OnReadError(beast::error_code ec) {
  if (ec == http::error::header_limit) {
    return Reply(http::status::request_header_fields_too_large,
                 ErrorJson("CABECALHO_GRANDE", "request headers over 8 KiB"), true);
  }
  if (ec == http::error::body_limit) {
    return Reply(http::status::payload_too_large,
                 ErrorJson("CORPO_GRANDE", "request body over 1 KiB"), true);
  }
  bool malformed = ec.category() == http::make_error_code(http::error::bad_method).category() &&
                   ec != http::error::end_of_stream && ec != http::error::partial_message;
  // Closed, timed out (a slow or idle client) or reset: nothing to answer.
  if (!malformed) return ShutdownSocket();
  Reply(http::status::bad_request, ErrorJson("REQUISICAO_INVALIDA", "malformed HTTP request"),
        true);
}

template <class Stream>
void Session<Stream>::Handle(const http::request<http::string_body>& req) {
  keep_alive_ = req.keep_alive();
  Routed routed = RouteRequest(req.method_string(), req.target());
  route_ = routed.route;
  switch (routed.route) {
    case Route::kHealth:
      return Reply(http::status::ok, R"({"status":"ok"})");
    case Route::kReady: {
      // Asks Redis now (re-reading the layout): ready means reachable and loaded.
      auto self = this->shared_from_this();
      w_.store().RefreshLayout([this, self] {
        if (w_.redis().connected() && w_.store().layout()) {
          return Reply(http::status::ok, R"({"status":"ready"})");
        }
        Reply(http::status::service_unavailable,
              ErrorJson("NAO_PRONTO",
                        w_.store().layout() ? "Redis unreachable" : "no data loaded yet"));
      });
      return;
    }
    case Route::kMetrics: {
      // The freshness the monitor measured joins our own metrics.
      auto self = this->shared_from_this();
      w_.redis().Command({"GET", monitor::kStatusKey}, [this, self](const Status& s,
                                                                    redisReply* r) {
        if (s.ok() && r && r->type == REDIS_REPLY_STRING) {
          w_.shared().SetFreshness(std::string_view(r->str, r->len));
        }
        Reply(http::status::ok, w_.shared().registry.Expose(), false, "text/plain; version=0.0.4");
      });
      return;
    }
    case Route::kOpenApi:
      return Reply(http::status::ok, OpenApiDocument());
    case Route::kStatusPage:
      return Reply(http::status::ok, kStatusPageHtml, false, "text/html; charset=utf-8",
                   w_.shared().status_page_csp);
    case Route::kStatusJson: {
      auto self = this->shared_from_this();
      w_.redis().Command({"GET", monitor::kStatusKey}, [this, self](const Status& s,
                                                                    redisReply* r) {
        if (!s.ok()) return Unavailable(s);
        if (!r || r->type != REDIS_REPLY_STRING) {
          return Reply(
              http::status::ok,
              R"({"stages":[],"freshness":{},"note":"no status published: is pdv monitor running?"})");
        }
        // Anyone may read it: states, never what names a server.
        auto published = nlohmann::json::parse(std::string_view(r->str, r->len), nullptr, false);
        Reply(http::status::ok, monitor::PublicStatus(published).dump());
      });
      return;
    }
    case Route::kNotFound:
      return Reply(http::status::not_found, ErrorJson("NAO_ENCONTRADO", "no such route"));
    case Route::kMethodNotAllowed:
      return Reply(http::status::method_not_allowed, ErrorJson("METODO_NAO_PERMITIDO", "only GET"));
    case Route::kCustomer:
    case Route::kLegacyStatus:
      break;
  }
  // Data routes: first the client's address, then its key.
  if (int wait = w_.addresses().Take(peer_); wait > 0) {
    w_.shared().address_limited->Add(1);
    retry_after_ = wait;
    return Reply(http::status::too_many_requests,
                 ErrorJson("LIMITE_EXCEDIDO", "too many requests from this address"));
  }
  // The key is kept in the session: its buffer outlives requests (no allocation).
  key_.clear();
  if (auto auth = req[http::field::authorization]; auth.rfind("Bearer ", 0) == 0) {
    key_.assign(auth.substr(7));
  } else if (auto header = req["X-API-Key"]; !header.empty()) {
    key_.assign(header);
  }
  if (key_.empty()) {
    return Reply(http::status::unauthorized,
                 ErrorJson("NAO_AUTENTICADO",
                           "an API key is required (Authorization: Bearer or X-API-Key)"));
  }
  arg_.assign(routed.arg);
  // Known keys and locally admitted requests go on at once, without a callback.
  if (auto known = w_.keys().Known(key_)) return OnKeyState(*known);
  auto self = this->shared_from_this();
  w_.keys().LookUp(key_, /*index_seen=*/false, [this, self](Status s, KeyState state) {
    if (!s.ok()) return Unavailable(s);
    OnKeyState(state);
  });
}

template <class Stream>
void Session<Stream>::OnKeyState(KeyState state) {
  if (state == KeyState::kUnknown) {
    return Reply(http::status::unauthorized, ErrorJson("CHAVE_INVALIDA", "unknown API key"));
  }
  if (state == KeyState::kRevoked) {
    return Reply(http::status::forbidden, ErrorJson("CHAVE_REVOGADA", "this API key was revoked"));
  }
  if (state == KeyState::kSuspended) {
    return Reply(http::status::forbidden,
                 ErrorJson("CHAVE_SUSPENSA",
                           "this API key is suspended: its lookups looked like an "
                           "enumeration of CPFs"));
  }
  if (auto admission = w_.limits().TryAdmit(key_)) return OnAdmission(*admission);
  auto self = this->shared_from_this();
  w_.limits().Admit(key_, [this, self](Admission admission) { OnAdmission(admission); });
}

template <class Stream>
void Session<Stream>::OnAdmission(const Admission& admission) {
  if (!admission.allowed) {
    retry_after_ = admission.retry_after_s;
    bool daily = std::string_view(admission.code) == "COTA_DIARIA_EXCEDIDA";
    return Reply(http::status::too_many_requests,
                 ErrorJson(admission.code, daily ? "this API key's daily quota is spent"
                                                 : "too many requests for this API key"));
  }
  if (route_ == Route::kCustomer) return LookupCustomer();
  LookupLegacy();
}

template <class Stream>
void Session<Stream>::LookupCustomer() {
  auto cpf = Cpf::Parse(arg_);
  if (!cpf.ok()) return Reply(http::status::bad_request, ErrorJson("CPF_INVALIDO", cpf.message()));
  w_.store().ByHash(
      w_.hasher().RawHash(*cpf), this->shared_from_this(), [this](const CustomerStore::Answer& a) {
        if (ReplyFailed(a)) return;
        w_.keys().RecordLookup(key_, a.record == nullptr);
        if (!a.record) {
          return Reply(http::status::not_found,
                       ErrorJson("NAO_ENCONTRADO", "no club member with this CPF"));
        }
        body_.clear();
        AppendCustomerJson(&body_, *a.record, NowSeconds(), w_.shared().options.fields);
        Reply(http::status::ok, body_);
      });
}

// The original platform's route: an unknown or malformed id is a 200 saying so.
template <class Stream>
void Session<Stream>::LookupLegacy() {
  auto reply = [this](const cache::CustomerRecord* record) {
    Reply(http::status::ok, LegacyJson(arg_, record, NowSeconds(), Elapsed()));
  };
  auto id = cache::UuidBytes(arg_);
  if (!id.ok()) return reply(nullptr);
  w_.store().ById(*id, this->shared_from_this(), [this, reply](const CustomerStore::Answer& a) {
    if (!ReplyFailed(a)) reply(a.record);
  });
}

template <class Stream>
bool Session<Stream>::ReplyFailed(const CustomerStore::Answer& answer) {
  switch (answer.outcome) {
    case CustomerStore::Outcome::kFound:
    case CustomerStore::Outcome::kNotFound:
      return false;
    case CustomerStore::Outcome::kNotLoaded:
      Reply(http::status::service_unavailable,
            ErrorJson("INDISPONIVEL", "no customer data loaded yet"));
      return true;
    case CustomerStore::Outcome::kUnavailable:
      Unavailable(answer.why);
      return true;
  }
  return false;
}

template <class Stream>
void Session<Stream>::Unavailable(const Status& why) {
  w_.shared().redis_errors->Add(1);
  w_.LogRedisError(why);
  Reply(http::status::service_unavailable,
        ErrorJson("INDISPONIVEL", "the customer store is unavailable"));
}

template <class Stream>
double Session<Stream>::Elapsed() const {
  return std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
}

template <class Stream>
void Session<Stream>::Reply(http::status status, std::string_view body, bool close,
                            const char* type, std::string_view csp) {
  close = close || closing_ || !keep_alive_;
  WriteResponse({.status = static_cast<unsigned>(status),
                 .content_type = type,
                 .retry_after_s = retry_after_,
                 .close = close,
                 .content_security_policy = csp},
                body, answer_);
  auto [counter, latency] = w_.Count(route_, static_cast<unsigned>(status));
  counter->Add(1);
  if (started_ != Clock::time_point()) {
    latency->Observe(std::chrono::duration<double>(Clock::now() - started_).count());
  }
  // The client must take the answer within the read timeout.
  SetDeadline(Clock::now() + w_.shared().options.read_timeout);
  auto self = this->shared_from_this();
  asio::async_write(stream_, asio::buffer(answer_),
                    [this, self, close](beast::error_code ec, size_t) {
                      busy_ = false;
                      retry_after_ = 0;
                      started_ = {};
                      route_ = Route::kNotFound;
                      if (ec || close || closing_) return ShutdownSocket();
                      Read();
                    });
}

template class Session<Socket>;
template class Session<beast::ssl_stream<Socket>>;

}  // namespace pdv::api
