// The POS API on Boost.Beast: one event loop per core, each with its own acceptor
// (SO_REUSEPORT) and its own pipelined Redis connection. Kept in few files: Beast is
// expensive to compile.

// clang-format off
#include <utility>  // before any Asio header under C++20 (PLATFORM-NOTES.md)
// clang-format on

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>

#include "api/apikeys.h"
#include "api/deadlines.h"
#include "api/key_limits.h"
#include "api/near_cache.h"
#include "api/request.h"
#include "api/response.h"
#include "api/serve.h"
#include "api/status_page.h"
#include "cache/record.h"
#include "common/accept_errors.h"
#include "common/cpf.h"
#include "common/cpf_hasher.h"
#include "common/fd_limit.h"
#include "common/host_port.h"
#include "metrics/registry.h"
#include "monitor/monitor.h"
#include "redis/async_client.h"
#include "redis/async_cluster.h"
#include "redis/async_sentinel.h"

namespace pdv::api {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
// The loop's own executor type, not Asio's type-erased default: every handler and
// operation on a connection would otherwise pay for the erasure.
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;

constexpr size_t kHeaderLimit = 8 * 1024;
// The first read of a request: a whole GET fits (the parser reads on for the rest).
constexpr size_t kFirstRead = 2048;
constexpr size_t kBodyLimit = 1024;

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string OpenApi();

// State shared by every event loop (thread-safe).
struct Shared {
  const ServeOptions& options;
  Logger& log;
  metrics::Registry registry;
  std::atomic<size_t> connections{0};
  size_t max_connections = 0;  // options' value kept within the open-file limit
  std::atomic<bool> stopping{false};
  std::mutex metrics_mu;
  std::map<std::string, metrics::Gauge*> counters;
  std::map<std::string, metrics::Histogram*> latencies;
  metrics::Gauge* redis_errors;
  metrics::Gauge* open_connections;
  metrics::Gauge* near_hits;
  metrics::Gauge* near_misses;
  metrics::Gauge* enumeration_alarms;
  metrics::Gauge* tls_failures;
  std::optional<asio::ssl::context> tls;  // set: every connection is HTTPS
  metrics::Gauge* address_limited;
  metrics::Gauge* address_connections_refused;
  int loops = 1;
  AddressConnections address_connections;  // api.max_connections_per_ip, every loop's
  const std::string status_page_csp = StatusPageContentSecurityPolicy();

  Shared(const ServeOptions& o, Logger& l, int threads)
      : options(o),
        log(l),
        max_connections(o.max_connections),
        loops(threads),
        address_connections(o.max_connections_per_ip) {
    enumeration_alarms = registry.AddCounter(
        "pdv_api_enumeration_alarms_total",
        "keys whose share of 404s passed the enumeration threshold (api.enumeration_ratio)");
    tls_failures = registry.AddCounter("pdv_api_tls_handshake_failures_total",
                                       "connections whose TLS handshake failed");
    address_limited = registry.AddCounter("pdv_api_address_limited_total",
                                          "requests refused by the per-address limit");
    address_connections_refused = registry.AddCounter(
        "pdv_api_address_connections_refused_total",
        "connections closed at once: their address had api.max_connections_per_ip open");
    redis_errors = registry.AddCounter("pdv_api_redis_errors_total", "Redis commands that failed");
    open_connections = registry.AddGauge("pdv_api_connections", "open client connections");
    near_hits = registry.AddCounter("pdv_api_near_cache_hits_total", "lookups answered in process");
    near_misses =
        registry.AddCounter("pdv_api_near_cache_misses_total", "lookups that went to Redis");
    freshness_p50 = registry.AddGauge("pdv_freshness_p50_seconds",
                                      "OLTP commit to API answer, median of the monitor's probes");
    freshness_p99 = registry.AddGauge("pdv_freshness_p99_seconds",
                                      "OLTP commit to API answer, p99 of the monitor's probes");
    freshness_probes = registry.AddGauge("pdv_freshness_probes", "probes the monitor completed");
    freshness_missed = registry.AddGauge("pdv_freshness_missed", "probes that got no answer");
  }
  metrics::Gauge* freshness_p50;
  metrics::Gauge* freshness_p99;
  metrics::Gauge* freshness_probes;
  metrics::Gauge* freshness_missed;
  void SetFreshness(std::string_view status_json) {
    auto j = nlohmann::json::parse(status_json, nullptr, false);
    if (!j.is_object() || !j["freshness"].is_object()) return;
    const auto& f = j["freshness"];
    freshness_p50->Set(f.value("p50_ms", 0.0) / 1000);
    freshness_p99->Set(f.value("p99_ms", 0.0) / 1000);
    freshness_probes->Set(static_cast<double>(f.value("samples", int64_t{0})));
    freshness_missed->Set(static_cast<double>(f.value("missed", int64_t{0})));
  }
  // Registered once per (route, status); loops keep the pointers (see Worker::Count).
  metrics::Gauge* Counter(const char* route, unsigned status) {
    std::string key =
        fmt::format("pdv_api_requests_total{{route=\"{}\",status=\"{}\"}}", route, status);
    std::lock_guard lock(metrics_mu);
    auto& c = counters[key];
    if (!c) c = registry.AddCounter(key, "requests by route and status");
    return c;
  }
  metrics::Histogram* Latency(const char* route, unsigned status) {
    std::string key =
        fmt::format("pdv_api_request_seconds{{route=\"{}\",status=\"{}\"}}", route, status);
    std::lock_guard lock(metrics_mu);
    auto& h = latencies[key];
    if (!h) {
      h = registry.AddHistogram(
          key, "request latency by route",
          {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1});
    }
    return h;
  }
};

// What the worker needs of a session, whatever its transport.
// One Redis server, the primary Sentinels name, or a cluster.
std::shared_ptr<redis::AsyncCommands> MakeRedis(asio::io_context& io,
                                                const redis::Endpoint& endpoint,
                                                std::chrono::milliseconds timeout) {
  if (endpoint.cluster) return std::make_shared<redis::AsyncCluster>(io, endpoint, timeout);
  if (endpoint.sentinel()) return std::make_shared<redis::AsyncSentinel>(io, endpoint, timeout);
  return std::make_shared<redis::AsyncClient>(io, endpoint, timeout);
}

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void Shutdown() = 0;
  // Its deadline (idle, read or write) passed: closes the connection.
  virtual void Expire() = 0;
};

constexpr size_t kMaxRememberedKeys = 10'000;  // per event loop

// One event loop: acceptor, Redis connection, per-key state, open sessions.
class Worker {
 public:
  Worker(Shared& shared, const redis::Endpoint& endpoint)
      : shared_(shared),
        acceptor_(io_),
        redis_(MakeRedis(io_, endpoint, shared.options.redis_timeout)),
        hasher_(shared.options.cpf_key),
        limits_(*redis_, {.rate_per_key = shared.options.rate_per_key,
                          .daily_quota = shared.options.daily_quota_per_key,
                          .loops = shared.loops}),
        addresses_(shared.options.rate_per_ip / std::max(1, shared.loops)),
        watch_(shared.options.enumeration_ratio, shared.options.enumeration_min_lookups,
               shared.options.enumeration_window) {
    if (auto cluster = std::dynamic_pointer_cast<redis::AsyncCluster>(redis_)) cluster->Start();
    if (auto sentinel = std::dynamic_pointer_cast<redis::AsyncSentinel>(redis_)) sentinel->Start();
    // The near-cache: every server this loop reads from tracks its reads (per node on a
    // cluster, the current primary behind Sentinels).
    if (shared.options.near_cache) {
      near_cache_on_ = true;
      redis_->EnableTracking({.on_key =
                                  [this](std::string_view key) {
                                    // Only cpf index reads are cached.
                                    if (auto b = cache::Layout::CpfBucketOfKey(key)) {
                                      near_.Invalidate(*b);
                                    }
                                  },
                              .on_reset = [this] { near_.Clear(); }});
    }
  }

  Status Listen(const tcp::endpoint& endpoint) {
    boost::system::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) {
      int one = 1;
      ::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
      acceptor_.bind(endpoint, ec);
    }
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::Error(fmt::format("serve: cannot listen on {}:{}: {}",
                                       endpoint.address().to_string(), endpoint.port(),
                                       ec.message()));
    }
    return Status::Ok();
  }
  int port() const { return acceptor_.local_endpoint().port(); }
  void Start() {
    Accept();
    KeepLayoutFresh();
    Sweep();
  }

  // The near-cache serves `key` only while reads of it are tracked (redis::AsyncCommands).
  bool near_cache_on() const { return near_cache_on_; }
  NearCache& near() { return near_; }

  void Run() { io_.run(); }
  // From any thread: stop accepting; idle sessions close, busy ones after their reply;
  // then the Redis connection closes and Run returns.
  void Stop();
  asio::io_context& io() { return io_; }
  Shared& shared() { return shared_; }
  redis::AsyncCommands& redis() { return *redis_; }
  const CpfHasher& hasher() const { return hasher_; }
  // A connection's slot in the loop's deadlines; given back when it closes.
  uint32_t Register(const std::shared_ptr<SessionBase>& session) {
    uint32_t slot = deadlines_.Add();
    if (slot >= by_slot_.size()) by_slot_.resize(size_t{slot} + 1);
    by_slot_[slot] = session;
    return slot;
  }
  void Unregister(uint32_t slot) {
    deadlines_.Remove(slot);
    by_slot_[slot].reset();
  }
  Deadlines& deadlines() { return deadlines_; }

  // The cache layout in use (version and bucket bits), refreshed every second.
  const std::optional<cache::Layout>& layout() const { return layout_; }
  void RefreshLayout(std::function<void()> then = {});

  enum class KeyState { kValid, kRevoked, kSuspended, kUnknown };
  // The key's state when this loop knows it without asking Redis (a malformed key, or
  // one remembered); nullopt otherwise: then call LookUpKey.
  std::optional<KeyState> KnownKey(const std::string& key);
  // Asks Redis for a key KnownKey does not know; `index_seen` once the key index was
  // found present.
  void LookUpKey(const std::string& key, bool index_seen,
                 std::function<void(Status, KeyState)> done);
  // The request counter and latency histogram of (route, status), looked up in the
  // shared registry only the first time on this loop.
  std::pair<metrics::Gauge*, metrics::Histogram*> Count(Route route, unsigned status) {
    auto& slot = counted_[static_cast<size_t>(route) * 1000 + status];
    if (!slot.first) {
      slot = {shared_.Counter(RouteName(route), status), shared_.Latency(RouteName(route), status)};
    }
    return slot;
  }
  // At most one log line a second per loop: a Redis outage fails every request.
  void LogRedisError(const Status& why) {
    auto now = Clock::now();
    if (now - last_error_log_ < std::chrono::seconds(1)) return;
    last_error_log_ = now;
    shared_.log.Warn("serve_redis_error", {{"error", why.message()}});
  }
  KeyLimits& limits() { return limits_; }
  AddressLimits& addresses() { return addresses_; }
  // Counts a lookup's outcome for `key`; past the enumeration threshold, logs, counts
  // and (with the option) suspends the key on every replica.
  void RecordLookup(const std::string& key, bool not_found);

 private:
  void Accept();
  void DrainThenClose(Clock::time_point deadline);
  // Re-reads the layout every second, so a version switch is seen within a second.
  void KeepLayoutFresh();
  // Every kSweepInterval: closes the connections past their deadline. Ends once the
  // loop stopped accepting and has no connection left.
  void Sweep();
  static constexpr auto kSweepInterval = std::chrono::milliseconds(250);

  Shared& shared_;
  // Before io_: the sessions its pending handlers hold unregister when io_ destroys them.
  Deadlines deadlines_;
  std::vector<std::weak_ptr<SessionBase>> by_slot_;  // the session of each slot
  asio::io_context io_{1};
  Acceptor acceptor_;
  // Closes connections past their deadline (Worker::Sweep): one timer for the loop, not
  // one armed and cancelled with every read and write.
  asio::steady_timer sweep_{io_};
  asio::steady_timer accept_retry_{io_};
  AcceptErrors accept_errors_;
  std::shared_ptr<redis::AsyncCommands> redis_;
  CpfHasher hasher_;
  std::optional<cache::Layout> layout_;
  Clock::time_point layout_at_{};
  bool layout_refreshing_ = false;
  struct KeyEntry {
    KeyState state;
    Clock::time_point until;
  };
  std::unordered_map<std::string, KeyEntry> keys_;
  KeyLimits limits_;
  AddressLimits addresses_;
  EnumerationWatch watch_;
  Clock::time_point last_error_log_{};
  std::unordered_map<size_t, std::pair<metrics::Gauge*, metrics::Histogram*>> counted_;
  NearCache near_;
  bool near_cache_on_ = false;
};

// One client connection, over plain TCP or TLS (Stream: Socket or beast::ssl_stream of
// one). Its deadline is checked by the loop's sweep (Worker::Sweep).
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  // `peer`: the client's address, already counted in Shared::address_connections.
  template <class... Args>
  Session(Worker& w, std::string peer, Socket socket, Args&&... tls)
      : w_(w), stream_(std::move(socket), std::forward<Args>(tls)...), peer_(std::move(peer)) {
    w_.shared().open_connections->Add(1);
  }
  ~Session() {
    w_.Unregister(slot_);
    w_.shared().address_connections.Release(peer_);
    w_.shared().connections--;
    w_.shared().open_connections->Add(-1);
  }
  void Start() {
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
  // Called on shutdown: close now if idle, else after the reply in flight.
  void Shutdown() override {
    closing_ = true;
    if (!busy_) Close();
  }
  void Expire() override { Close(); }  // the pending read or write ends (operation_aborted)

 private:
  static constexpr bool kTls = !std::is_same_v<Stream, Socket>;
  Socket& LowestSocket() { return beast::get_lowest_layer(stream_); }
  // Clock::time_point{}: none (while the answer is looked up: Redis has its own timeout).
  void SetDeadline(Clock::time_point at) { w_.deadlines().Set(slot_, at); }
  void Close() {
    beast::error_code ignored;
    LowestSocket().shutdown(tcp::socket::shutdown_both, ignored);
    LowestSocket().close(ignored);
  }
  void Read() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(kBodyLimit);
    // A pipelined request already began: its time runs from now.
    if (buffer_.size() > 0) return ReadRequest();
    // Waiting for a request may last the idle timeout. Its first byte is read here, not
    // by the parser, so that the read timeout is counted from it: a client that
    // trickles a byte now and then must not hold the connection past that.
    SetDeadline(Clock::now() + w_.shared().options.idle_timeout);
    auto self = this->shared_from_this();
    stream_.async_read_some(buffer_.prepare(kFirstRead),
                            [this, self](beast::error_code ec, size_t n) {
                              if (ec) return OnReadError(ec);
                              buffer_.commit(n);
                              ReadRequest();
                            });
  }
  // The request whose first byte is in buffer_: headers and body within the read
  // timeout, one deadline for both, however the bytes come.
  void ReadRequest() {
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
      if (parser_->is_done()) {  // no body (a GET): no second read to wait for
        SetDeadline({});
        started_ = Clock::now();
        return Handle(parser_->get());
      }
      http::async_read(stream_, buffer_, *parser_, [this, self](beast::error_code ec2, size_t) {
        if (ec2) return OnReadError(ec2);
        SetDeadline({});
        started_ = Clock::now();
        Handle(parser_->get());
      });
    });
  }

  // No Transfer-Encoding, or chunked alone (every field of it: a second field could
  // hide another coding).
  static bool TransferEncodingAccepted(const http::request<http::string_body>& req) {
    auto [first, last] = req.equal_range(http::field::transfer_encoding);
    if (first == last) return true;
    std::string codings;
    for (auto it = first; it != last; ++it) {
      if (!codings.empty()) codings += ',';
      codings.append(it->value().data(), it->value().size());
    }
    return IsChunkedOnly(codings);
  }

  void OnReadError(beast::error_code ec) {
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
    if (!malformed) {
      // Closed, timed out (a slow or idle client) or reset: nothing to answer.
      beast::error_code ignored;
      LowestSocket().shutdown(tcp::socket::shutdown_both, ignored);
      return;
    }
    Reply(http::status::bad_request, ErrorJson("REQUISICAO_INVALIDA", "malformed HTTP request"),
          true);
  }

  void Handle(const http::request<http::string_body>& req) {
    keep_alive_ = req.keep_alive();
    Routed routed = RouteRequest(req.method_string(), req.target());
    route_ = routed.route;
    switch (routed.route) {
      case Route::kHealth:
        return Reply(http::status::ok, R"({"status":"ok"})");
      case Route::kReady: {
        // Asks Redis now (re-reading the layout): ready means reachable and loaded.
        auto self = this->shared_from_this();
        w_.RefreshLayout([this, self] {
          if (w_.redis().connected() && w_.layout()) {
            return Reply(http::status::ok, R"({"status":"ready"})");
          }
          Reply(http::status::service_unavailable,
                ErrorJson("NAO_PRONTO", w_.layout() ? "Redis unreachable" : "no data loaded yet"));
        });
        return;
      }
      case Route::kMetrics: {
        // The freshness the monitor measured joins our own metrics.
        auto self = this->shared_from_this();
        w_.redis().Command({"GET", monitor::kStatusKey},
                           [this, self](const Status& s, redisReply* r) {
                             if (s.ok() && r && r->type == REDIS_REPLY_STRING) {
                               w_.shared().SetFreshness(std::string_view(r->str, r->len));
                             }
                             Reply(http::status::ok, w_.shared().registry.Expose(), false,
                                   "text/plain; version=0.0.4");
                           });
        return;
      }
      case Route::kOpenApi:
        return Reply(http::status::ok, OpenApi());
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
        return Reply(http::status::method_not_allowed,
                     ErrorJson("METODO_NAO_PERMITIDO", "only GET"));
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
    if (auto known = w_.KnownKey(key_)) return OnKeyState(*known);
    auto self = this->shared_from_this();
    w_.LookUpKey(key_, /*index_seen=*/false, [this, self](Status s, Worker::KeyState state) {
      if (!s.ok()) return Unavailable(s);
      OnKeyState(state);
    });
  }

  void OnKeyState(Worker::KeyState state) {
    if (state == Worker::KeyState::kUnknown) {
      return Reply(http::status::unauthorized, ErrorJson("CHAVE_INVALIDA", "unknown API key"));
    }
    if (state == Worker::KeyState::kRevoked) {
      return Reply(http::status::forbidden,
                   ErrorJson("CHAVE_REVOGADA", "this API key was revoked"));
    }
    if (state == Worker::KeyState::kSuspended) {
      return Reply(http::status::forbidden,
                   ErrorJson("CHAVE_SUSPENSA",
                             "this API key is suspended: its lookups looked like an "
                             "enumeration of CPFs"));
    }
    if (auto admission = w_.limits().TryAdmit(key_)) return OnAdmission(*admission);
    auto self = this->shared_from_this();
    w_.limits().Admit(key_, [this, self](Admission admission) { OnAdmission(admission); });
  }

  void OnAdmission(const Admission& admission) {
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

  void LookupCustomer() {
    auto cpf = Cpf::Parse(arg_);
    if (!cpf.ok())
      return Reply(http::status::bad_request, ErrorJson("CPF_INVALIDO", cpf.message()));
    FetchByHash(w_.hasher().RawHash(*cpf), /*retried=*/false,
                [this](const cache::CustomerRecord* r) {
                  w_.RecordLookup(key_, r == nullptr);
                  if (!r)
                    return Reply(http::status::not_found,
                                 ErrorJson("NAO_ENCONTRADO", "no club member with this CPF"));
                  body_.clear();
                  AppendCustomerJson(&body_, *r, NowSeconds(), w_.shared().options.fields);
                  Reply(http::status::ok, body_);
                });
  }

  void LookupLegacy(bool refreshed = false) {
    auto id = cache::UuidBytes(arg_);
    if (!id.ok()) {
      return Reply(http::status::ok, LegacyJson(arg_, nullptr, NowSeconds(), Elapsed()));
    }
    if (!w_.layout()) {
      if (refreshed) return NotLoaded();
      auto self = this->shared_from_this();
      return w_.RefreshLayout([this, self] { LookupLegacy(true); });
    }
    const cache::Layout layout = *w_.layout();
    auto self = this->shared_from_this();
    std::string key = layout.IdKey(*id), field = cache::Layout::IdField(*id);
    w_.redis().Command({"HGET", key, field}, [this, self, id = *id](const Status& s,
                                                                    redisReply* r) {
      if (!s.ok()) return Unavailable(s);
      if (r->type != REDIS_REPLY_STRING || r->len != cache::Layout::kCpfFieldBytes) {
        return Reply(http::status::ok, LegacyJson(arg_, nullptr, NowSeconds(), Elapsed()));
      }
      std::array<uint8_t, 32> hash{};
      std::copy(r->str, r->str + r->len, hash.begin());
      FetchByHash(hash, false, [this, id](const cache::CustomerRecord* rec) {
        bool match = rec && rec->cliente_id == id;
        Reply(http::status::ok, LegacyJson(arg_, match ? rec : nullptr, NowSeconds(), Elapsed()));
      });
    });
  }

  // One HGET. On a miss, the layout is re-read once (a full load may just have
  // switched versions) before the miss is believed.
  void FetchByHash(const std::array<uint8_t, 32>& hash, bool retried,
                   std::function<void(const cache::CustomerRecord*)> done) {
    if (!w_.layout()) {
      // Nothing loaded as far as this loop knows: ask Redis once before saying so (a
      // load may have just switched in, seen by another loop first).
      if (retried) return NotLoaded();
      auto self = this->shared_from_this();
      return w_.RefreshLayout([this, self, hash, done] {
        if (!w_.layout()) return NotLoaded();
        FetchByHash(hash, true, done);
      });
    }
    const cache::Layout layout = *w_.layout();
    const uint32_t bucket = layout.Bucket(hash.data());
    std::string key = layout.CpfBucketKey(bucket);
    // Invalidations Redis sent before this request arrived are applied first.
    bool cacheable = w_.near_cache_on() && w_.redis().Tracked(key);
    NearCache::Ticket ticket;
    if (cacheable) {
      if (const cache::CustomerRecord* hit = w_.near().Get(hash, layout.version, bucket)) {
        w_.shared().near_hits->Add(1);
        return done(hit);
      }
      w_.shared().near_misses->Add(1);
      ticket = w_.near().Take(bucket);
    }
    auto self = this->shared_from_this();
    w_.redis().Command({"HGET", key, cache::Layout::CpfField(hash)},
                       [this, self, hash, retried, done, key, bucket, cacheable, ticket,
                        version = layout.version](const Status& s, redisReply* r) {
                         if (!s.ok()) return Unavailable(s);
                         if (r->type == REDIS_REPLY_STRING) {
                           auto rec = cache::Decode(std::string_view(r->str, r->len));
                           if (!rec.ok()) return Unavailable();
                           if (cacheable && w_.redis().TrackingOn(key))
                             w_.near().Put(hash, version, bucket, *rec, ticket);
                           return done(&*rec);
                         }
                         if (retried) return done(nullptr);
                         w_.RefreshLayout([this, self, hash, done, version] {
                           // The dataset is gone (Redis lost it): not "unknown".
                           if (!w_.layout()) return NotLoaded();
                           if (w_.layout()->version == version) return done(nullptr);
                           FetchByHash(hash, true, done);
                         });
                       });
  }

  void Unavailable(const Status& why = Status::Error("undecodable record")) {
    w_.shared().redis_errors->Add(1);
    w_.LogRedisError(why);
    Reply(http::status::service_unavailable,
          ErrorJson("INDISPONIVEL", "the customer store is unavailable"));
  }
  void NotLoaded() {
    Reply(http::status::service_unavailable,
          ErrorJson("INDISPONIVEL", "no customer data loaded yet"));
  }
  double Elapsed() const {
    return std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
  }

  void Reply(http::status status, std::string_view body, bool close = false,
             const char* type = "application/json; charset=utf-8", std::string_view csp = {}) {
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
                        if (ec || close || closing_) {
                          beast::error_code ignored;
                          LowestSocket().shutdown(tcp::socket::shutdown_both, ignored);
                          return;
                        }
                        Read();
                      });
  }

  Worker& w_;
  Stream stream_;
  std::string peer_;  // the client's address
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string answer_;  // the answer being written
  std::string body_;    // a customer's answer body (its buffer reused request to request)
  Route route_ = Route::kNotFound;
  std::string arg_;
  std::string key_;  // the request's API key
  bool keep_alive_ = true, busy_ = false, closing_ = false;
  int retry_after_ = 0;
  Clock::time_point started_{};
  uint32_t slot_ = 0;  // in the loop's deadlines
};

void Worker::Accept() {
  acceptor_.async_accept([this](beast::error_code ec, Socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;  // shutdown
    if (ec) {
      // Out of descriptors or memory (or anything else): wait and accept again; the
      // loop must never end while the process lives.
      uint64_t failures = 0;
      if (accept_errors_.Count(Clock::now(), &failures)) {
        shared_.log.Warn("serve_accept_error",
                         {{"error", ec.message()},
                          {"failures", failures},
                          {"retry_in_ms", AcceptErrors::kRetryDelay.count()}});
      }
      accept_retry_.expires_after(AcceptErrors::kRetryDelay);
      accept_retry_.async_wait([this](beast::error_code wec) {
        if (!wec && acceptor_.is_open()) Accept();
      });
      return;
    }
    beast::error_code peer_ec;
    auto remote = socket.remote_endpoint(peer_ec);
    std::string peer = peer_ec ? std::string() : remote.address().to_string();
    if (++shared_.connections > shared_.max_connections) {
      shared_.connections--;
      beast::error_code ignored;
      socket.close(ignored);
    } else if (!shared_.address_connections.Acquire(peer)) {
      // One address (a runaway client, or a flood of slow ones) may not take every
      // connection: closed unanswered, as past max_connections.
      shared_.connections--;
      shared_.address_connections_refused->Add(1);
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      socket.set_option(tcp::no_delay(true));
      if (shared_.tls) {
        std::make_shared<Session<beast::ssl_stream<Socket>>>(*this, std::move(peer),
                                                             std::move(socket), *shared_.tls)
            ->Start();
      } else {
        std::make_shared<Session<Socket>>(*this, std::move(peer), std::move(socket))->Start();
      }
    }
    Accept();
  });
}

void Worker::Stop() {
  asio::post(io_, [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
    for (auto& weak : by_slot_) {
      if (auto s = weak.lock()) s->Shutdown();
    }
    DrainThenClose(Clock::now() + std::chrono::seconds(10));
  });
}

void Worker::DrainThenClose(Clock::time_point deadline) {
  if (deadlines_.size() == 0 || Clock::now() >= deadline) {
    // Requests in flight are answered: the Redis connections can go, and with them the
    // loop's last work.
    redis_->Close();
    return;
  }
  auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(10));
  timer->async_wait([this, timer, deadline](beast::error_code) { DrainThenClose(deadline); });
}

void Worker::RefreshLayout(std::function<void()> then) {
  // With a layout, once a second; without one (nothing loaded, or Redis lost it), as
  // lookups ask, every 20 ms at most, so the reload is seen at once.
  auto age = Clock::now() - layout_at_;
  if (!then && (layout_refreshing_ || (layout_ && age < std::chrono::seconds(1)) ||
                (!layout_ && age < std::chrono::milliseconds(20)))) {
    return;
  }
  layout_refreshing_ = true;
  redis_->Command({"HMGET", cache::kMetaKey, "version", "bits", "format"},
                  [this, then](const Status& s, redisReply* r) {
                    layout_refreshing_ = false;
                    if (s.ok() && r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
                      std::vector<std::pair<std::string, std::string>> fields;
                      const char* names[] = {"version", "bits", "format"};
                      for (size_t i = 0; i < 3; ++i) {
                        if (r->element[i]->type == REDIS_REPLY_STRING) {
                          fields.emplace_back(names[i],
                                              std::string(r->element[i]->str, r->element[i]->len));
                        }
                      }
                      auto meta = cache::ParseMeta(fields);
                      if (meta.ok() && meta->exists) {
                        layout_ = meta->layout;
                      } else {
                        // No dataset (Redis lost its data, or before the first load) or a malformed
                        // meta: nothing can be known, so lookups answer 503, never "unknown".
                        if (!meta.ok()) LogRedisError(meta.status());
                        if (layout_) near_.Clear();
                        layout_.reset();
                      }
                      layout_at_ = Clock::now();
                    }
                    if (then) then();
                  });
}

void Worker::Sweep() {
  if (!acceptor_.is_open() && deadlines_.size() == 0) return;
  deadlines_.ExpireAt(Clock::now(), [this](uint32_t slot) {
    if (auto s = by_slot_[slot].lock()) s->Expire();
  });
  sweep_.expires_after(kSweepInterval);
  sweep_.async_wait([this](beast::error_code ec) {
    if (!ec) Sweep();
  });
}

void Worker::KeepLayoutFresh() {
  RefreshLayout();
  auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(1));
  timer->async_wait([this, timer](beast::error_code ec) {
    if (!ec && !shared_.stopping) KeepLayoutFresh();
  });
}

std::optional<Worker::KeyState> Worker::KnownKey(const std::string& key) {
  // Only what `pdv apikey` makes ("pdv_" and 64 hex digits) can be a key: anything else
  // is unknown at once, asks nothing of Redis and is remembered nowhere, so the memory
  // below holds at most kMaxRememberedKeys keys of 68 bytes.
  if (!LooksLikeApiKey(key)) return KeyState::kUnknown;
  // Remembered by the key as sent (process memory only), so a known key costs no hash.
  if (auto it = keys_.find(key); it != keys_.end() && it->second.until > Clock::now()) {
    return it->second.state;
  }
  return std::nullopt;
}

void Worker::LookUpKey(const std::string& key, bool index_seen,
                       std::function<void(Status, KeyState)> done) {
  redis_->Command({"HGET", ApiKeyRedisKey(ApiKeyHash(key)), "revoked"},
                  [this, key, index_seen, done](const Status& s, redisReply* r) {
                    if (!s.ok()) return done(s, KeyState::kUnknown);
                    KeyState state = r->type != REDIS_REPLY_STRING             ? KeyState::kUnknown
                                     : std::string_view(r->str, r->len) == "1" ? KeyState::kRevoked
                                                                               : KeyState::kValid;
                    auto remember = [this, key, done](KeyState state) {
                      // For half a second: a revocation reaches every loop and replica within
                      // that (the contract: under a second).
                      if (keys_.size() > kMaxRememberedKeys) keys_.clear();
                      keys_[key] = {state, Clock::now() + std::chrono::milliseconds(500)};
                      done(Status::Ok(), state);
                    };
                    if (state == KeyState::kValid) {
                      // Valid unless suspended for enumeration (by any replica).
                      return redis_->Command(
                          {"EXISTS", SuspendedKey(ApiKeyHash(key))},
                          [done, remember](const Status& es, redisReply* er) {
                            if (!es.ok()) return done(es, KeyState::kUnknown);
                            bool suspended = er->type == REDIS_REPLY_INTEGER && er->integer == 1;
                            remember(suspended ? KeyState::kSuspended : KeyState::kValid);
                          });
                    }
                    if (state != KeyState::kUnknown || index_seen) return remember(state);
                    // Unknown, or Redis lost every key (the index's marker is gone too)
                    // and the cache stage has not refilled them yet: then nobody can
                    // tell, and the answer is 503, not 401. The index is written after
                    // every key (RestoreApiKeys), so once it is seen, a second look at
                    // the key is the answer: a restore that ended between the two reads
                    // above must not make a restored key a 401.
                    redis_->Command({"EXISTS", kApiKeysIndexKey},
                                    [this, key, done](const Status& es, redisReply* er) {
                                      if (!es.ok()) return done(es, KeyState::kUnknown);
                                      if (er->type == REDIS_REPLY_INTEGER && er->integer == 0) {
                                        return done(Status::Error("API keys are not loaded (Redis "
                                                                  "lost its data)"),
                                                    KeyState::kUnknown);
                                      }
                                      LookUpKey(key, /*index_seen=*/true, done);
                                    });
                  });
}

void Worker::RecordLookup(const std::string& key, bool not_found) {
  if (!watch_.Record(key, not_found)) return;
  const ServeOptions& o = shared_.options;
  std::string hash = ApiKeyHash(key);
  shared_.enumeration_alarms->Add(1);
  // Named as `pdv apikey revoke` names it, and by its hash's first 12 hex digits (the
  // hash is no secret: it is what Redis and the warehouse hold) should names repeat.
  // The field names avoid "key", which the logger redacts.
  redis_->Command({"HGET", ApiKeyRedisKey(hash), "name"}, [this, prefix = hash.substr(0, 12)](
                                                              const Status& s, redisReply* r) {
    const ServeOptions& opts = shared_.options;
    std::string name = s.ok() && r && r->type == REDIS_REPLY_STRING
                           ? std::string(r->str, r->len)
                           : std::string("(unknown: Redis did not say)");
    shared_.log.Warn("serve_enumeration_suspected",
                     {{"credential", name},
                      {"credential_sha256_prefix", prefix},
                      {"not_found_ratio_over", opts.enumeration_ratio},
                      {"window_s", static_cast<int64_t>(opts.enumeration_window.count())},
                      {"action", opts.enumeration_suspend ? "suspended" : "logged"}});
  });
  if (!o.enumeration_suspend) return;
  keys_.erase(key);
  redis_->Command(
      {"SET", SuspendedKey(hash), "1", "EX", std::to_string(o.enumeration_suspend_for.count())},
      [this](const Status& s, redisReply*) {
        if (!s.ok()) LogRedisError(s);
      });
}

std::string OpenApi() {
  return R"json({"openapi":"3.0.3","info":{"title":"pdv","version":"1"},
"components":{"securitySchemes":{"bearer":{"type":"http","scheme":"bearer"},"apiKey":{"type":"apiKey","in":"header","name":"X-API-Key"}},
"schemas":{"Erro":{"type":"object","properties":{"erro":{"type":"string"},"mensagem":{"type":"string"}}},
"Cliente":{"type":"object","properties":{"cliente_id":{"type":"string","format":"uuid"},"elegivel_promocao":{"type":"boolean"},
"motivo":{"type":"string","nullable":true,"enum":["INATIVO","SEM_OPT_IN","EM_CARENCIA"]},
"elegivel_a_partir_de":{"type":"string","format":"date-time","nullable":true},"status_clube":{"type":"string","enum":["ATIVO","INATIVO"]},
"opt_in_marketing":{"type":"boolean"},"primeiro_nome":{"type":"string"},"ticket_medio_estimado":{"type":"number"},
"origem_campanha":{"type":"string"},"atualizado_em":{"type":"string","format":"date-time"}}}}},
"security":[{"bearer":[]},{"apiKey":[]}],
"paths":{
"/v1/clientes/{cpf}":{"get":{"summary":"Club membership and eligibility by CPF","parameters":[{"name":"cpf","in":"path","required":true,"schema":{"type":"string","example":"123.456.789-09"}}],
"responses":{"200":{"description":"found","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Cliente"}}}},
"400":{"description":"invalid CPF"},"401":{"description":"no or unknown API key"},"403":{"description":"revoked API key"},
"404":{"description":"unknown customer"},"429":{"description":"rate limited (Retry-After)"},"503":{"description":"store unavailable"}}}},
"/cliente/{cliente_id}/status":{"get":{"summary":"The original platform's route","parameters":[{"name":"cliente_id","in":"path","required":true,"schema":{"type":"string"}}],
"responses":{"200":{"description":"status, or status CADASTRO INEXISTENTE"},"401":{"description":"no API key"},"403":{"description":"revoked"},"429":{"description":"rate limited"},"503":{"description":"unavailable"}}}},
"/health":{"get":{"security":[],"responses":{"200":{"description":"alive"}}}},
"/ready":{"get":{"security":[],"responses":{"200":{"description":"Redis reachable and data loaded"},"503":{"description":"not ready"}}}},
"/metrics":{"get":{"security":[],"responses":{"200":{"description":"Prometheus text"}}}},
"/openapi.json":{"get":{"security":[],"responses":{"200":{"description":"this document"}}}},
"/status":{"get":{"security":[],"responses":{"200":{"description":"the pipeline's status page (HTML)"}}}},
"/status.json":{"get":{"security":[],"responses":{"200":{"description":"each stage's position, lag, rate and health, and the measured freshness, as published by pdv monitor"}}}}}})json";
}

}  // namespace

Status Serve(const ServeOptions& options, Logger& log, std::stop_token stop) {
  if (options.cpf_key.size() < 16) return Status::Error("serve: cpf_key is not set");
  // A bad configuration is said before anything is bound.
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return Status::Error("serve: HTTPS needs both --tls-cert and --tls-key");
  }
  auto endpoint = redis::ParseRedisUrl(options.redis_url);
  if (!endpoint.ok()) return endpoint.status();
  auto hp = ParseHostPort(options.listen);
  if (!hp.ok()) return Status::Error("serve: bad listen address: " + hp.message());
  boost::system::error_code ec;
  auto address = asio::ip::make_address(hp->host, ec);
  if (ec) return Status::Error(fmt::format("serve: bad listen address {}", options.listen));
  tcp::endpoint listen(address, static_cast<uint16_t>(hp->port));

  // The loops share the port through SO_REUSEPORT, which would also let a second server
  // of the same user share it silently: first make sure nobody holds it.
  if (listen.port() != 0) {
    asio::io_context probe_io;
    tcp::acceptor probe(probe_io);
    boost::system::error_code pec;
    probe.open(listen.protocol(), pec);
    if (!pec) probe.set_option(asio::socket_base::reuse_address(true), pec);
    if (!pec) probe.bind(listen, pec);
    if (pec) {
      return Status::Error(
          fmt::format("serve: cannot listen on {}: {}", options.listen, pec.message()));
    }
  }

  int threads = options.threads > 0
                    ? options.threads
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  Shared shared(options, log, threads);
  if (!options.tls_cert.empty() || !options.tls_key.empty()) {
    auto& ctx = shared.tls.emplace(asio::ssl::context::tls_server);
    // TLS 1.2 and later only.
    ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                    asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                    asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
    boost::system::error_code tls_ec;
    ctx.use_certificate_chain_file(options.tls_cert, tls_ec);
    if (tls_ec) {
      return Status::Error(fmt::format("serve: cannot use the certificate {}: {}", options.tls_cert,
                                       tls_ec.message()));
    }
    ctx.use_private_key_file(options.tls_key, asio::ssl::context::pem, tls_ec);
    if (tls_ec) {
      return Status::Error(fmt::format("serve: cannot use the private key {}: {}", options.tls_key,
                                       tls_ec.message()));
    }
  }
  // Descriptors besides client connections: per loop its listener, epoll and wake-up
  // fds, Redis data and invalidation connections; plus logs, std streams and slack.
  FdLimit fd_limit = CurrentFdLimit();
  shared.max_connections =
      ConnectionsWithin(fd_limit, options.max_connections, 32 + 8 * static_cast<size_t>(threads));
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < threads; ++i) {
    workers.push_back(std::make_unique<Worker>(shared, *endpoint));
    if (Status s = workers.back()->Listen(listen); !s.ok()) return s;
    // Port 0: the first loop gets a free port, the others share it (SO_REUSEPORT).
    if (listen.port() == 0) listen.port(static_cast<uint16_t>(workers.back()->port()));
  }
  for (auto& w : workers) w->Start();
  std::vector<std::thread> running;
  for (auto& w : workers) running.emplace_back([&w] { w->Run(); });
  log.Info("serve_listening",
           {{"address", listen.address().to_string()},
            {"scheme", shared.tls ? "https" : "http"},
            {"port", static_cast<int>(listen.port())},
            {"threads", threads},
            // Every shape tracks reads (per node on a cluster, on the current primary
            // behind Sentinels): the near-cache is on wherever the option is.
            {"near_cache", options.near_cache ? "on" : "off"},
            {"redis", endpoint->cluster      ? "cluster"
                      : endpoint->sentinel() ? "sentinel"
                                             : "server"},
            {"fd_limit", fd_limit.soft},
            {"max_connections", static_cast<uint64_t>(shared.max_connections)},
            {"max_connections_asked", static_cast<uint64_t>(options.max_connections)},
            {"max_connections_per_ip", static_cast<uint64_t>(options.max_connections_per_ip)},
            {"rate_per_ip", options.rate_per_ip},
            {"rate_per_key", options.rate_per_key},
            {"daily_quota_per_key", options.daily_quota_per_key},
            {"enumeration_ratio", options.enumeration_ratio},
            {"enumeration_min_lookups", options.enumeration_min_lookups},
            {"enumeration_action", options.enumeration_suspend ? "suspend" : "log"},
            {"read_timeout_s", static_cast<int64_t>(options.read_timeout.count())},
            {"idle_timeout_s", static_cast<int64_t>(options.idle_timeout.count())}});
  std::stop_callback on_stop(stop, [&] {
    shared.stopping = true;
    for (auto& w : workers) w->Stop();
  });
  for (auto& t : running) t.join();
  log.Info("serve_stopped", {});
  return Status::Ok();
}

}  // namespace pdv::api
