#pragma once
/// @file
/// Runs a program as a child process with its output appended to a log file: `posix_spawnp` with the
/// arguments as a vector (no shell, so no quoting and no word splitting), stdin from /dev/null, stdout
/// and stderr into the log. POSIX only (the example tools' output directories are POSIX already).

#include <torch/torch.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;  // NOLINT: POSIX declares it nowhere else

namespace ohem_splits {

/// How a child process ended.
struct ExitStatus {
  int code = 0;    ///< the exit status, or 128 + the signal that ended it (as a shell reports it)
  int signal = 0;  ///< the signal that ended it, 0 if it exited
  /// True when it exited with status 0.
  bool ok() const { return code == 0 && signal == 0; }
  /// "exit status 3" or "signal 9 (Killed)".
  std::string describe() const {
    if (signal != 0) return "signal " + std::to_string(signal) + " (" + ::strsignal(signal) + ")";
    return "exit status " + std::to_string(code);
  }
};

/// Runs `argv` (argv[0]: the program, looked up in PATH when it holds no '/'), with the environment of
/// this process, stdin from /dev/null and stdout and stderr appended to `log` (created if missing), and
/// waits for it. Throws c10::Error naming the program if it cannot be started (e.g. it does not exist).
///
/// Example: `ExitStatus s = run_logged({"train_pairwise", "--csv", "a.csv"}, "run/ohem-splits.log");`
inline ExitStatus run_logged(const std::vector<std::string>& argv, const std::string& log) {
  TORCH_CHECK(!argv.empty() && !argv[0].empty(), "no program to run");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  TORCH_CHECK(::posix_spawn_file_actions_init(&actions) == 0, "posix_spawn_file_actions_init failed");
  int rc = ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (rc == 0)
    rc = ::posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (rc == 0) rc = ::posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  if (rc == 0) rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  TORCH_CHECK(rc == 0, "cannot run \"", argv[0], "\": ", std::strerror(rc));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    TORCH_CHECK(errno == EINTR, "waiting for \"", argv[0], "\" (process ", pid, "): ", std::strerror(errno));
  }
  ExitStatus s;
  if (WIFSIGNALED(status)) {
    s.signal = WTERMSIG(status);
    s.code = 128 + s.signal;
  } else {
    s.code = WEXITSTATUS(status);
  }
  return s;
}

/// `argv` as one line a POSIX shell would read back as the same words (for logs and reports only; the
/// program is never run through a shell).
inline std::string shell_quote(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    const bool plain = !a.empty() && a.find_first_not_of(
                                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789-_./=:,+@%") == std::string::npos;
    if (plain) {
      out += a;
      continue;
    }
    out += '\'';
    for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

}  // namespace ohem_splits
