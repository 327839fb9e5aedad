// Where this process's cgroup settings live: parsing /proc/self/cgroup and /proc/self/mountinfo.
#ifndef ASIO_BLOCKING_SRC_CGROUP_HPP
#define ASIO_BLOCKING_SRC_CGROUP_HPP

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace asio_blocking::detail {

/// Which cgroup hierarchy to look in: the unified one (v2), or a v1 hierarchy by controller.
struct cgroup_hierarchy {
    /// Empty for v2; a v1 controller name ("cpu", "pids") otherwise.
    std::string_view v1_controller;
};

inline constexpr cgroup_hierarchy cgroup_v2{};

/// This process's cgroup path in `hierarchy`, from the contents of /proc/self/cgroup
/// ("0::/a/b" for v2, "4:cpu,cpuacct:/a/b" for v1); nullopt if it has no such line.
std::optional<std::string> cgroup_path(std::string_view proc_self_cgroup, cgroup_hierarchy hierarchy);

/// A mounted cgroup hierarchy: where it is mounted, and which of its cgroups is the mount's root.
struct cgroup_mount {
    std::string mount_point;
    std::string root;
};

/// The mount of `hierarchy` from the contents of /proc/self/mountinfo; nullopt if not mounted.
std::optional<cgroup_mount> find_cgroup_mount(std::string_view mountinfo, cgroup_hierarchy hierarchy);

/// The directories of the cgroup `path` and of its ancestors visible under `mount`, innermost
/// first (a limit set on any of them applies: the effective one is the tightest).
std::vector<std::string> cgroup_dirs(const cgroup_mount& mount, std::string_view path);

/// cgroup_dirs() of this process in `hierarchy`, read from /proc/self; empty if unavailable.
std::vector<std::string> own_cgroup_dirs(cgroup_hierarchy hierarchy);

/// The whole contents of a (small, /proc or /sys) file; nullopt if it cannot be read.
std::optional<std::string> read_small_file(const std::string& path);

} // namespace asio_blocking::detail

#endif
