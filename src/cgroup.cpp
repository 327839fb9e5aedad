// Where this process's cgroup settings live: parsing /proc/self/cgroup and /proc/self/mountinfo.
#include "cgroup.hpp"

#include <fstream>
#include <sstream>

namespace asio_blocking::detail {

namespace {

/// Calls f(line) for each line of `text`; stops early if f returns true.
template <typename F>
bool for_each_line(std::string_view text, F f)
{
    while (!text.empty()) {
        const auto end = text.find('\n');
        if (f(text.substr(0, end)))
            return true;
        if (end == std::string_view::npos)
            break;
        text.remove_prefix(end + 1);
    }
    return false;
}

bool list_contains(std::string_view comma_separated, std::string_view item)
{
    while (true) {
        const auto end = comma_separated.find(',');
        if (comma_separated.substr(0, end) == item)
            return true;
        if (end == std::string_view::npos)
            return false;
        comma_separated.remove_prefix(end + 1);
    }
}

std::vector<std::string_view> split_spaces(std::string_view line)
{
    std::vector<std::string_view> fields;
    while (!line.empty()) {
        const auto start = line.find_first_not_of(' ');
        if (start == std::string_view::npos)
            break;
        line.remove_prefix(start);
        const auto end = line.find(' ');
        fields.push_back(line.substr(0, end));
        if (end == std::string_view::npos)
            break;
        line.remove_prefix(end);
    }
    return fields;
}

} // namespace

std::optional<std::string> cgroup_path(std::string_view proc_self_cgroup, cgroup_hierarchy hierarchy)
{
    std::optional<std::string> found;
    for_each_line(proc_self_cgroup, [&](std::string_view line) {
        // hierarchy-id:controller-list:path (the path may itself contain ':').
        const auto first = line.find(':');
        if (first == std::string_view::npos)
            return false;
        const auto second = line.find(':', first + 1);
        if (second == std::string_view::npos)
            return false;
        const auto id = line.substr(0, first);
        const auto controllers = line.substr(first + 1, second - first - 1);
        const bool match = hierarchy.v1_controller.empty() ? id == "0" && controllers.empty()
                                                           : list_contains(controllers, hierarchy.v1_controller);
        if (match)
            found.emplace(line.substr(second + 1));
        return match;
    });
    return found;
}

std::optional<cgroup_mount> find_cgroup_mount(std::string_view mountinfo, cgroup_hierarchy hierarchy)
{
    std::optional<cgroup_mount> found;
    for_each_line(mountinfo, [&](std::string_view line) {
        // id parent major:minor root mount-point options [optional fields...] - fstype source super-options
        const auto fields = split_spaces(line);
        std::size_t dash = 6;
        while (dash < fields.size() && fields[dash] != "-")
            ++dash;
        if (dash + 3 >= fields.size())
            return false;
        const auto fstype = fields[dash + 1];
        const bool match = hierarchy.v1_controller.empty()
                               ? fstype == "cgroup2"
                               : fstype == "cgroup" && list_contains(fields[dash + 3], hierarchy.v1_controller);
        if (match)
            found.emplace(cgroup_mount{std::string(fields[4]), std::string(fields[3])});
        return match;
    });
    return found;
}

std::vector<std::string> cgroup_dirs(const cgroup_mount& mount, std::string_view path)
{
    // The mount shows the hierarchy from `root` down (a container sees its own cgroup as "/").
    std::string_view root = mount.root;
    while (!root.empty() && root.back() == '/')
        root.remove_suffix(1);
    if (path.substr(0, root.size()) == root && (path.size() == root.size() || path[root.size()] == '/'))
        path.remove_prefix(root.size());
    std::vector<std::string> dirs;
    while (true) {
        while (!path.empty() && path.back() == '/')
            path.remove_suffix(1);
        dirs.push_back(mount.mount_point + std::string(path));
        if (path.empty())
            return dirs;
        path = path.substr(0, path.rfind('/'));
    }
}

std::vector<std::string> own_cgroup_dirs(cgroup_hierarchy hierarchy)
{
    const auto self = read_small_file("/proc/self/cgroup");
    const auto mounts = read_small_file("/proc/self/mountinfo");
    if (!self || !mounts)
        return {};
    const auto path = cgroup_path(*self, hierarchy);
    const auto mount = find_cgroup_mount(*mounts, hierarchy);
    if (!path || !mount)
        return {};
    return cgroup_dirs(*mount, *path);
}

std::optional<std::string> read_small_file(const std::string& path)
{
    std::ifstream in(path);
    if (!in)
        return std::nullopt;
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad())
        return std::nullopt;
    return std::move(text).str();
}

} // namespace asio_blocking::detail
