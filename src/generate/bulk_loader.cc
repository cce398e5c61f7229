#include "generate/bulk_loader.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "common/progress.h"
#include "generate/copy_encoder.h"
#include "generate/customer_generator.h"
#include "generate/oltp_schema.h"

namespace pdv::generate {
namespace {

constexpr size_t kChunkRows = 4096;

struct Chunk {
  std::string copy_data;
  std::string cpfs;
  uint64_t rows = 0;
};

// Bounded hand-off from generator threads to the COPY writer.
class ChunkQueue {
 public:
  explicit ChunkQueue(size_t capacity) : capacity_(capacity) {}
  bool Push(Chunk chunk) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return queue_.size() < capacity_ || closed_; });
    if (closed_) return false;
    queue_.push_back(std::move(chunk));
    not_empty_.notify_one();
    return true;
  }
  std::optional<Chunk> Pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return !queue_.empty() || closed_ || producers_ == 0; });
    if (queue_.empty()) return std::nullopt;
    Chunk c = std::move(queue_.front());
    queue_.pop_front();
    not_full_.notify_one();
    return c;
  }
  void SetProducers(int n) {
    std::lock_guard lock(mu_);
    producers_ = n;
  }
  void ProducerDone() {
    std::lock_guard lock(mu_);
    --producers_;
    not_empty_.notify_all();
  }
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_full_.notify_all();
    not_empty_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<Chunk> queue_;
  size_t capacity_;
  int producers_ = 0;
  bool closed_ = false;
};

struct KeyConstraint {
  std::string name;
  std::string definition;
};

pdv::Result<std::vector<KeyConstraint>> KeyConstraints(pg::Connection& conn) {
  auto r = conn.Exec(
      "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
      "WHERE conrelid = 'public.clientes_clube'::regclass AND contype IN ('p', 'u') "
      "ORDER BY contype, conname");
  if (!r.ok()) return r.status();
  std::vector<KeyConstraint> keys;
  for (int i = 0; i < r->rows(); ++i) keys.push_back({r->str(i, 0), r->str(i, 1)});
  return keys;
}

// The serial of the n-th customer (from 0) of serials from `first` on, less `skipped`
// (ascending).
uint64_t NthSerial(uint64_t first, const std::vector<uint64_t>& skipped, uint64_t n) {
  uint64_t s = first + n;
  for (uint64_t gap : skipped) {
    if (gap > s) break;
    ++s;
  }
  return s;
}

}  // namespace

pdv::Result<BulkLoadResult> BulkLoad(pg::Connection& conn, const ReferenceData& data,
                                     const BulkLoadOptions& options, std::stop_token stop) {
  auto started = std::chrono::steady_clock::now();
  BulkLoadResult result;
  if (options.count == 0) return result;

  // A range of serials can hold a few whose CPF would be all one digit: reserve spares.
  auto first = ReserveSerials(conn, options.count + 16);
  if (!first.ok()) return first.status();
  // The customers get the reserved serials in order, but for the few without a CPF:
  // only those are remembered, so that memory does not grow with the count.
  std::vector<uint64_t> skipped;
  for (uint64_t s = *first, valid = 0; valid < options.count; ++s) {
    if (CustomerGenerator::CpfFor(s)) {
      ++valid;
    } else {
      skipped.push_back(s);
    }
  }

  auto txn = pg::Transaction::Begin(conn);
  if (!txn.ok()) return txn.status();
  if (auto r = conn.Exec("SET LOCAL maintenance_work_mem = '512MB'"); !r.ok()) return r.status();
  if (auto r = conn.Exec("LOCK TABLE public.clientes_clube IN SHARE ROW EXCLUSIVE MODE"); !r.ok()) {
    return r.status();
  }
  auto empty = conn.Exec("SELECT NOT EXISTS (SELECT 1 FROM public.clientes_clube)");
  if (!empty.ok()) return empty.status();
  std::vector<KeyConstraint> keys;
  if (empty->get(0, 0) == "t") {
    auto found = KeyConstraints(conn);
    if (!found.ok()) return found.status();
    keys = std::move(*found);
    for (const auto& k : keys) {
      auto r = conn.Exec(fmt::format("ALTER TABLE public.clientes_clube DROP CONSTRAINT {}",
                                     conn.Identifier(k.name)));
      if (!r.ok()) return r.status();
    }
    result.rebuilt_indexes = true;
  }

  if (Status s = conn.CopyBegin(fmt::format(
          "COPY public.clientes_clube ({}) FROM STDIN WITH (FORMAT binary)", kCopyColumns));
      !s.ok()) {
    return s;
  }
  if (Status s = conn.CopyPut(CopyEncoder::Header()); !s.ok()) return s;

  ChunkQueue queue(8);
  std::atomic<size_t> next_chunk{0};
  size_t chunks = (options.count + kChunkRows - 1) / kChunkRows;
  int threads = std::max(1, options.threads);
  queue.SetProducers(threads);
  std::vector<std::jthread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      CustomerGenerator gen(data, options.seed, options.cpf_key);
      for (size_t c; (c = next_chunk.fetch_add(1)) < chunks && !stop.stop_requested();) {
        Chunk chunk;
        chunk.copy_data.reserve(kChunkRows * 260);
        size_t rows = std::min<size_t>(options.count - c * kChunkRows, kChunkRows);
        for (uint64_t s = NthSerial(*first, skipped, c * kChunkRows); chunk.rows < rows; ++s) {
          if (!CustomerGenerator::CpfFor(s)) continue;
          auto customer = gen.Make(s, options.as_of_us, false);
          CopyEncoder::Append(*customer, &chunk.copy_data);
          if (options.want_cpfs) {
            chunk.cpfs += customer->cpf.digits();
            chunk.cpfs += '\n';
          }
          ++chunk.rows;
        }
        if (!queue.Push(std::move(chunk))) break;
      }
      queue.ProducerDone();
    });
  }

  std::optional<Progress> progress;
  if (options.progress) progress.emplace(options.progress, "initial_load", options.count);
  Status copy_status;
  while (auto chunk = queue.Pop()) {
    if (copy_status = conn.CopyPut(chunk->copy_data); !copy_status.ok()) break;
    result.rows += chunk->rows;
    result.cpfs += chunk->cpfs;
    if (progress) progress->Update(result.rows);
  }
  queue.Close();
  workers.clear();  // joins
  if (!copy_status.ok()) return copy_status;
  if (stop.stop_requested()) {
    return Status::Error("initial load interrupted: rolled back, nothing was loaded");
  }
  if (Status s = conn.CopyPut(CopyEncoder::Trailer()); !s.ok()) return s;
  if (Status s = conn.CopyEnd(); !s.ok()) return s;

  auto keys_started = std::chrono::steady_clock::now();
  for (const auto& k : keys) {
    auto r = conn.Exec(fmt::format("ALTER TABLE public.clientes_clube ADD CONSTRAINT {} {}",
                                   conn.Identifier(k.name), k.definition));
    if (!r.ok()) return r.status();
  }
  if (Status s = txn->Commit(); !s.ok()) return s;
  result.keys_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - keys_started).count();
  if (progress) progress->Finish(result.rows);
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace pdv::generate
