import Foundation
import Testing

/// The real `lockvault` binary (or any program) started with posix_spawn and an empty signal
/// mask — as a shell or systemd would start it; Foundation's Process passes on the test
/// runner's blocked signals. Standard output and standard error go to files of their own, so
/// a test can check what each says.
final class ChildProcess: @unchecked Sendable {
    let pid: pid_t
    private let stdoutPath: String
    private let stderrPath: String
    private let lock = NSLock()
    private var exitStatus: Int32?

    /// What one finished command printed and how it exited.
    struct Result: CustomStringConvertible {
        var status: Int32
        var stdout: String
        var stderr: String
        var output: String { stdout + stderr }
        var description: String { "exit \(status)\n--- stdout\n\(stdout)\n--- stderr\n\(stderr)" }
    }

    /// Starts `lockvault <arguments>`.
    convenience init(lockvault arguments: [String], environment extra: [String: String] = [:]) throws {
        try self.init(path: DaemonProcess.binary, arguments: arguments, environment: extra)
    }

    init(path: String, arguments: [String], environment extra: [String: String] = [:]) throws {
        let tmp = FileManager.default.temporaryDirectory.path
        let tag = UUID().uuidString.prefix(8)
        stdoutPath = "\(tmp)/lv-child-\(tag).out"
        stderrPath = "\(tmp)/lv-child-\(tag).err"
        var env = ProcessInfo.processInfo.environment
        for key in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "INVOCATION_ID"] { env.removeValue(forKey: key) }
        for (k, v) in extra { env[k] = v }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, path, &actions, &attr, argv, envp)
        guard rc == 0 else { throw SpawnFailed(path: path, errno: rc) }
        pid = child
    }

    deinit {
        if isRunning { kill(pid, SIGKILL); _ = reap(blocking: true) }
        unlink(stdoutPath)
        unlink(stderrPath)
    }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    func signal(_ sig: Int32) { if isRunning { kill(pid, sig) } }

    var isRunning: Bool { reap(blocking: false) == nil }

    /// The exit code (128 + n when killed by signal n), once it exited.
    private func reap(blocking: Bool) -> Int32? {
        lock.lock()
        defer { lock.unlock() }
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        let r = waitpid(pid, &status, blocking ? 0 : WNOHANG)
        guard r == pid else { return nil }
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        exitStatus = code
        return code
    }

    /// Waits for exit (killing it after `timeout`, which fails the wait).
    func waitForExit(timeout: Duration = .seconds(60)) async throws -> Result {
        do {
            try await waitUntil("\(DaemonProcess.binary) exits", timeout: timeout, every: .milliseconds(20)) { !self.isRunning }
        } catch {
            kill(pid, SIGKILL)
            _ = reap(blocking: true)
            throw TimedOut(what: "process \(pid) to exit; output so far:\n\(stdout)\n\(stderr)")
        }
        return Result(status: reap(blocking: true) ?? -1, stdout: stdout, stderr: stderr)
    }

    /// Runs `lockvault <arguments>` to completion.
    static func lockvault(_ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(60)) async throws -> Result {
        try await ChildProcess(lockvault: arguments, environment: environment).waitForExit(timeout: timeout)
    }

    /// Resident set size in kB (from /proc), nil once it exited.
    var residentKB: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }
}

struct SpawnFailed: Error, CustomStringConvertible {
    let path: String
    let errno: Int32
    var description: String { "posix_spawn \(path) failed: \(String(cString: strerror(errno)))" }
}
