#include "subject/byte_scan.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <system_error>

#include "common/unique_fd.h"

namespace pdv::subject {
namespace fs = std::filesystem;
namespace {

constexpr size_t kChunk = 8 << 20;

std::string HexToBytes(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

bool IsHex(const std::string& s) {
  return !s.empty() && s.size() % 2 == 0 &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(c) != 0; });
}

// An RDB (its own file, or an AOF's base): its header does not say whether its strings
// are compressed.
bool IsRdb(const std::string& head) { return head.rfind("REDIS", 0) == 0; }

// Scans one open file: the first offset of each needle. Chunks overlap by the longest
// needle, so a value across a chunk boundary is found.
Status ScanOne(int fd, const std::vector<Needle>& needles, size_t overlap,
               std::map<size_t, uint64_t>* first, uint64_t* bytes, std::string* head,
               std::stop_token stop) {
  std::string buf;
  uint64_t base = 0;  // file offset of buf[0]
  std::vector<char> chunk(kChunk);
  while (true) {
    if (stop.stop_requested()) return Status::Error("stopped");
    ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Error(std::strerror(errno));
    }
    if (n == 0) return Status::Ok();
    if (head->empty()) head->assign(chunk.data(), std::min<size_t>(static_cast<size_t>(n), 16));
    *bytes += static_cast<uint64_t>(n);
    buf.append(chunk.data(), static_cast<size_t>(n));
    for (size_t i = 0; i < needles.size(); ++i) {
      if (first->count(i) || needles[i].bytes.empty()) continue;
      auto it = std::search(
          buf.begin(), buf.end(),
          std::boyer_moore_horspool_searcher(needles[i].bytes.begin(), needles[i].bytes.end()));
      if (it != buf.end()) (*first)[i] = base + static_cast<uint64_t>(it - buf.begin());
    }
    if (buf.size() > overlap) {
      base += buf.size() - overlap;
      buf.erase(0, buf.size() - overlap);
    }
  }
}

// Reads one regular file into `result`: its findings, or why it could not be read.
void ScanRegularFile(const std::string& path, const std::vector<Needle>& needles, size_t overlap,
                     const ByteScanOptions& options, ByteScanResult* result, std::stop_token stop) {
  UniqueFd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!f) {
    result->not_scanned.push_back({path, std::strerror(errno)});
    return;
  }
  std::map<size_t, uint64_t> first;
  std::string head;
  if (Status s = ScanOne(f.get(), needles, overlap, &first, &result->bytes, &head, stop); !s.ok()) {
    result->not_scanned.push_back({path, s.message()});
    return;
  }
  ++result->files;
  for (const auto& [i, offset] : first) result->found.push_back({path, needles[i].label, offset});
  if (IsRdb(head) && !options.rdb_uncompressed) {
    result->not_scanned.push_back(
        {path,
         "an RDB file: its strings over 20 bytes are LZF-compressed unless the server "
         "writes it with rdbcompression no; scanned as it is"});
  }
}

size_t LongestNeedle(const std::vector<Needle>& needles) {
  size_t overlap = 0;
  for (const auto& n : needles) overlap = std::max(overlap, n.bytes.size());
  return overlap;
}

}  // namespace

std::vector<Needle> NeedlesFor(const IdentifyingValues& p) {
  std::vector<Needle> out;
  auto add = [&](std::string label, std::string bytes) {
    if (!bytes.empty()) out.push_back({std::move(label), std::move(bytes)});
  };
  add("cpf (digits)", p.cpf);
  if (p.cpf.size() == 11) {
    add("cpf (formatted)", fmt::format("{}.{}.{}-{}", p.cpf.substr(0, 3), p.cpf.substr(3, 3),
                                       p.cpf.substr(6, 3), p.cpf.substr(9)));
  }
  add("cpf_hash (hex)", p.cpf_hash);
  // The raw hash's first 12 bytes: whatever prefix of it a key or field holds.
  if (IsHex(p.cpf_hash)) add("cpf_hash (bytes)", HexToBytes(p.cpf_hash).substr(0, 12));
  add("cliente_id (text)", p.cliente_id);
  std::string hex;
  for (char c : p.cliente_id) {
    if (c != '-') hex.push_back(c);
  }
  if (hex.size() == 32 && IsHex(hex)) add("cliente_id (16 bytes)", HexToBytes(hex));
  add("email", p.email);
  add("nome_completo", p.nome_completo);
  add("telefone", p.telefone);
  return out;
}

Result<ByteScanResult> ScanFiles(const fs::path& root, const std::vector<Needle>& needles,
                                 const ByteScanOptions& options, std::stop_token stop) {
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
  if (ec) return Status::Error(fmt::format("cannot list {}: {}", root.string(), ec.message()));
  const size_t overlap = LongestNeedle(needles);
  ByteScanResult result;
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) {
      result.not_scanned.push_back({it->path().string(), ec.message()});
      ec.clear();
      continue;
    }
    const fs::directory_entry& e = *it;
    std::string path = e.path().string();
    if (stop.stop_requested()) {
      result.not_scanned.push_back({root.string(), "the scan was stopped before its end"});
      break;
    }
    if (e.is_symlink(ec)) {
      result.not_scanned.push_back({path, "a symbolic link (not followed)"});
      continue;
    }
    if (e.is_directory(ec)) continue;
    if (!e.is_regular_file(ec)) {
      result.not_scanned.push_back({path, "not a regular file (a socket, FIFO or device)"});
      continue;
    }
    ScanRegularFile(path, needles, overlap, options, &result, stop);
  }
  return result;
}

ByteScanResult ScanFileList(const std::vector<fs::path>& files, const std::vector<Needle>& needles,
                            std::stop_token stop) {
  const size_t overlap = LongestNeedle(needles);
  ByteScanResult result;
  for (const auto& file : files) {
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(file, ec))) continue;
    if (!fs::is_regular_file(fs::symlink_status(file, ec))) {
      result.not_scanned.push_back({file.string(), "not a regular file"});
      continue;
    }
    ScanRegularFile(file.string(), needles, overlap, {}, &result, stop);
  }
  return result;
}

}  // namespace pdv::subject
