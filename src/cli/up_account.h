#pragma once

// The unprivileged account a root `pdv up` runs as. Root is needed only to make that
// account, to hand it the data directory and to switch to it; every server and stage
// then runs as it, with no capabilities, and the data directory stays owner-only (0700),
// which the servers' own accounts (postgres, redis) could not have entered.

#include <sys/types.h>

#include <filesystem>
#include <string>

#include "common/status.h"
#include "localsvc/scratch_dir.h"

namespace pdv::cli {

// The name of the system account made on first use.
inline constexpr char kPlatformAccount[] = "pdv";

// The account to run as: the data directory's owner when that is not root (an operator
// chose it), else the system account `pdv`, created (useradd --system, no home, no
// login shell) when missing. Only meaningful as root.
Result<localsvc::RunAs> ChoosePlatformAccount(const std::filesystem::path& data_dir);

// The login name of `uid` (the account chosen may be an operator's, not `pdv`), or
// "uid N" when it has none.
std::string AccountName(uid_t uid);

// Makes everything under `dir` (itself included, links not followed) owner-only:
// directories 0700, other entries without group and other bits; and, with `owner`,
// owned by that account. Fails on the first entry it cannot change.
Status MakePrivate(const std::filesystem::path& dir, const std::optional<localsvc::RunAs>& owner);

// Switches this whole process (every thread) to `account`: supplementary groups, group,
// user, in that order, then checks root cannot be regained. Capabilities go with uid 0;
// no_new_privs keeps any child from gaining any (setuid binaries included). The
// parent-death signal and non-dumpability, which a credential change resets, are set
// again.
Status DropPrivileges(const localsvc::RunAs& account);

}  // namespace pdv::cli
