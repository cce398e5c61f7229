#include "common/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

namespace pdv {

Progress::Progress(std::FILE* out, std::string label, uint64_t total)
    : out_(out),
      label_(std::move(label)),
      total_(total),
      tty_(::isatty(::fileno(out)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

std::string Progress::Bar(uint64_t done, uint64_t total, int width) {
  double frac = total == 0 ? 1.0 : std::min(1.0, static_cast<double>(done) / total);
  int filled = static_cast<int>(frac * width);
  return fmt::format("[{}{}] {:3d}%", std::string(filled, '#'), std::string(width - filled, '.'),
                     static_cast<int>(frac * 100));
}

void Progress::Update(uint64_t done) {
  auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(100)) return;
  } else {
    int decile = total_ == 0 ? 10 : static_cast<int>(done * 10 / total_);
    if (decile == last_decile_ && now - last_draw_ < std::chrono::seconds(5)) return;
    last_decile_ = decile;
  }
  last_draw_ = now;
  Draw(done, false);
}

void Progress::Finish(uint64_t done) { Draw(done, true); }

void Progress::Draw(uint64_t done, bool final) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = secs > 0 ? done / secs : 0;
  std::string eta = "";
  if (!final && rate > 0 && done < total_)
    eta = fmt::format(" eta {:.0f}s", (total_ - done) / rate);
  if (tty_) {
    fmt::print(out_, "\r{} {} {}/{} {:.0f}/s{}\x1b[K{}", label_, Bar(done, total_, 30), done,
               total_, rate, eta, final ? "\n" : "");
  } else {
    fmt::print(out_, "progress={} done={} total={} pct={} rate={:.0f}/s elapsed_s={:.1f}{}\n",
               label_, done, total_, total_ ? done * 100 / total_ : 100, rate, secs,
               final ? " final=true" : "");
  }
  std::fflush(out_);
}

}  // namespace pdv
