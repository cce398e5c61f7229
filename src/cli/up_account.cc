#include "cli/up_account.h"

#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "localsvc/child_process.h"

namespace pdv::cli {
namespace fs = std::filesystem;

namespace {

std::optional<localsvc::RunAs> LookUp(const char* name) {
  passwd* pw = ::getpwnam(name);
  if (pw == nullptr) return std::nullopt;
  return localsvc::RunAs{pw->pw_uid, pw->pw_gid};
}

}  // namespace

Result<localsvc::RunAs> ChoosePlatformAccount(const fs::path& data_dir) {
  struct stat st {};
  if (::stat(data_dir.c_str(), &st) == 0 && st.st_uid != 0) {
    passwd* pw = ::getpwuid(st.st_uid);
    if (pw == nullptr) {
      return Status::Error(
          fmt::format("data directory {} is owned by uid {}, which has no account: chown it to an "
                      "account, or to root to let pdv use its own '{}' account",
                      data_dir.string(), st.st_uid, kPlatformAccount));
    }
    return localsvc::RunAs{pw->pw_uid, pw->pw_gid};
  }
  if (auto found = LookUp(kPlatformAccount)) return *found;
  // Two `pdv up` starting at once both try; useradd then fails on its lock or on the
  // name, and the account is there (or soon is) all the same.
  Status made;
  for (int attempt = 0; attempt < 20; ++attempt) {
    made =
        localsvc::RunCommand({.argv = {"useradd", "--system", "--user-group", "--no-create-home",
                                       "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                                       "--comment", "pdv platform (pdv up)", kPlatformAccount}},
                             std::chrono::seconds(30));
    if (auto found = LookUp(kPlatformAccount)) return *found;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Status::Error(fmt::format(
      "running as root, pdv up runs the platform as the system account '{}', which could not "
      "be created ({}); create it (useradd --system {}), or chown the data directory to the "
      "account to run as",
      kPlatformAccount, made.message(), kPlatformAccount));
}

std::string AccountName(uid_t uid) {
  passwd pw{}, *found = nullptr;
  std::vector<char> buffer(16384);
  if (::getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &found) == 0 && found != nullptr) {
    return pw.pw_name;
  }
  return fmt::format("uid {}", uid);
}

Status MakePrivate(const fs::path& dir, const std::optional<localsvc::RunAs>& owner) {
  auto fix = [&](const fs::path& p) -> Status {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
      if (errno == ENOENT) return Status::Ok();  // a server removed it meanwhile
      return Status::Error(fmt::format("cannot read {}: {}", p.string(), std::strerror(errno)));
    }
    if (owner && (st.st_uid != owner->uid || st.st_gid != owner->gid) &&
        ::lchown(p.c_str(), owner->uid, owner->gid) != 0) {
      return Status::Error(fmt::format("cannot chown {}: {}", p.string(), std::strerror(errno)));
    }
    if (S_ISLNK(st.st_mode)) return Status::Ok();  // its mode means nothing
    mode_t wanted = S_ISDIR(st.st_mode) ? 0700 : (st.st_mode & 0700);
    if ((st.st_mode & 07777) != wanted && ::chmod(p.c_str(), wanted) != 0) {
      return Status::Error(fmt::format("cannot chmod {}: {}", p.string(), std::strerror(errno)));
    }
    return Status::Ok();
  };
  if (Status s = fix(dir); !s.ok()) return s;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (Status s = fix(it->path()); !s.ok()) return s;
  }
  if (ec) return Status::Error(fmt::format("cannot walk {}: {}", dir.string(), ec.message()));
  return Status::Ok();
}

Status DropPrivileges(const localsvc::RunAs& account) {
  if (account.uid == 0) return Status::Error("refusing to run the platform as root");
  int death_signal = 0;
  ::prctl(PR_GET_PDEATHSIG, &death_signal);
  gid_t only = account.gid;
  if (::setgroups(1, &only) != 0 || ::setgid(account.gid) != 0 || ::setuid(account.uid) != 0) {
    return Status::Error(fmt::format("cannot switch to uid {} gid {}: {}", account.uid, account.gid,
                                     std::strerror(errno)));
  }
  if (::setuid(0) == 0 || ::geteuid() == 0) {
    return Status::Error("switched account, but root could be regained: refusing to go on");
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return Status::Error(fmt::format("cannot set no_new_privs: {}", std::strerror(errno)));
  }
  ::prctl(PR_SET_DUMPABLE, 0);
  if (death_signal != 0) ::prctl(PR_SET_PDEATHSIG, death_signal);
  return Status::Ok();
}

}  // namespace pdv::cli
