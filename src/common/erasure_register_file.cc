#include "common/erasure_register_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/unique_fd.h"

namespace pdv {
namespace fs = std::filesystem;
namespace {

constexpr char kHeader[] =
    "# pdv erasure register (LGPD art. 18, VI): one erasure request per line, its subjects by "
    "HMAC-SHA256 under erasure_key only. Append-only: pdv subject forget writes it, pdv subject "
    "reapply reads it after a restore. Do not edit.\n";

bool IsLowerHex(std::string_view s, size_t length) {
  if (s.size() != length) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    char c = s[i];
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<std::string> StringField(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) return Status::Error(fmt::format("no \"{}\"", name));
  if (!it->is_string()) return Status::Error(fmt::format("\"{}\" is not a string", name));
  return it->get<std::string>();
}

}  // namespace

std::string ErasureRecordLine(const ErasureRecord& record) {
  nlohmann::json subjects = nlohmann::json::array();
  for (const auto& s : record.subjects) subjects.push_back({{"kind", s.kind}, {"hmac", s.hmac}});
  nlohmann::ordered_json j;
  j["request_id"] = record.request_id;
  j["requested_at"] = record.requested_at;
  j["at_source"] = record.at_source;
  j["subjects"] = subjects;
  return j.dump();
}

Result<ErasureRecord> ParseErasureRecordLine(std::string_view line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded()) return Status::Error("not a JSON line");
  if (!j.is_object()) return Status::Error("not a JSON object");
  ErasureRecord r;
  auto id = StringField(j, "request_id");
  if (!id.ok()) return id.status();
  if (!IsUuid(*id)) return Status::Error("\"request_id\" is not a lowercase UUID");
  r.request_id = *id;
  auto at = StringField(j, "requested_at");
  if (!at.ok()) return at.status();
  r.requested_at = *at;
  auto src = j.find("at_source");
  if (src == j.end() || !src->is_boolean()) return Status::Error("\"at_source\" is not true/false");
  r.at_source = src->get<bool>();
  auto subjects = j.find("subjects");
  if (subjects == j.end() || !subjects->is_array()) {
    return Status::Error("\"subjects\" is not a list");
  }
  for (size_t i = 0; i < subjects->size(); ++i) {
    const auto& s = (*subjects)[i];
    if (!s.is_object()) return Status::Error(fmt::format("subject {} is not an object", i + 1));
    auto kind = StringField(s, "kind");
    auto hmac = StringField(s, "hmac");
    if (!kind.ok() || !hmac.ok()) {
      return Status::Error(
          fmt::format("subject {}: {}", i + 1, kind.ok() ? hmac.message() : kind.message()));
    }
    if (*kind != "cliente_id" && *kind != "cpf_hash" && *kind != "email") {
      return Status::Error(fmt::format(
          "subject {}: kind \"{}\" is not cliente_id, cpf_hash or email", i + 1, *kind));
    }
    if (!IsLowerHex(*hmac, 64)) {
      return Status::Error(
          fmt::format("subject {}: \"hmac\" is not 64 lowercase hex characters", i + 1));
    }
    r.subjects.push_back({std::move(*kind), std::move(*hmac)});
  }
  return r;
}

Result<std::vector<ErasureRecord>> ReadErasureRegisterFile(const fs::path& file) {
  auto fail = [&](const std::string& why) {
    return Status::Error(fmt::format("erasure register {}: {}", file.string(), why));
  };
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::vector<ErasureRecord>{};
    return fail(fmt::format("cannot read: {}", std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail(std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return fail("cannot read: not a regular file");
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(fmt::format("cannot read: {}", std::strerror(errno)));
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  std::vector<ErasureRecord> out;
  size_t pos = 0;
  for (int number = 1; pos < text.size(); ++number) {
    size_t end = text.find('\n', pos);
    auto where = [&](const std::string& why) {
      return Status::Error(fmt::format("erasure register {}:{}: {}", file.string(), number, why));
    };
    if (end == std::string::npos) {
      return where(
          "the last line has no newline (an append was interrupted): the request it held was not "
          "applied; remove that line and run pdv subject forget again");
    }
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    if (line.empty() || line.front() == '#') continue;
    auto record = ParseErasureRecordLine(line);
    if (!record.ok()) return where(record.message());
    out.push_back(std::move(*record));
  }
  return out;
}

Status AppendErasureRegisterFile(const fs::path& file, const ErasureRecord& record) {
  auto fail = [&](const std::string& why) {
    return Status::Error(fmt::format("erasure register {}: {}", file.string(), why));
  };
  bool created = true;
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd && errno == EEXIST) {
    created = false;
    fd = UniqueFd(::open(file.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  }
  if (!fd) return fail(fmt::format("cannot open for appending: {}", std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail(std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return fail("not a regular file");
  // Owner-only whatever made it: it says who asked for an erasure, and when.
  if ((st.st_mode & 077) != 0 && ::fchmod(fd.get(), 0600) != 0) {
    return fail(fmt::format("cannot make it owner-only: {}", std::strerror(errno)));
  }
  std::string text =
      (created ? std::string(kHeader) : std::string()) + ErasureRecordLine(record) + "\n";
  ssize_t n;
  do {
    n = ::write(fd.get(), text.data(), text.size());
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(text.size())) {
    return fail(n < 0 ? fmt::format("cannot write: {}", std::strerror(errno))
                      : "short write (disk full?)");
  }
  if (::fsync(fd.get()) != 0) return fail(fmt::format("fsync: {}", std::strerror(errno)));
  if (created) {
    fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
    UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d || ::fsync(d.get()) != 0) {
      return fail(fmt::format("fsync of {}: {}", dir.string(), std::strerror(errno)));
    }
    // Made by root (an operator's forget on a `pdv up` data directory): the directory's
    // owner is the platform's account, whose cdc reads the file.
    struct stat dst {};
    if (::geteuid() == 0 && ::fstat(d.get(), &dst) == 0 && dst.st_uid != 0 &&
        ::fchown(fd.get(), dst.st_uid, dst.st_gid) != 0) {
      return fail(fmt::format("cannot give it to the directory's owner: {}", std::strerror(errno)));
    }
  }
  return Status::Ok();
}

}  // namespace pdv
