import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// What one attempt to hand an alert to a sink came to.
enum SinkAttempt: Sendable, Equatable {
    case delivered
    /// Worth trying again (timeout, connection refused, HTTP 5xx/408/429, non-zero exit).
    case retryable(String)
    /// Trying again won't help (HTTP 4xx, the program doesn't exist).
    case permanent(String)
}

/// A place alerts go. Implementations must honour `timeout` and never block Swift's
/// cooperative pool.
protocol AlertSink: Sendable {
    var name: String { get }
    func attempt(_ payload: [UInt8], timeout: Duration) async -> SinkAttempt
}

/// Runs a program (argv, no shell) with the alert's JSON on stdin; exit 0 means delivered.
///
/// The child gets a clean signal mask and default dispositions (the daemon ignores or traps
/// SIGTERM/SIGHUP; a mail or pager script must not inherit that), its stdout and stderr go to
/// the daemon's (so to the journal), and it is killed when it overruns its timeout.
struct CommandSink: AlertSink {
    let name: String
    let argv: [String]

    func attempt(_ payload: [UInt8], timeout: Duration) async -> SinkAttempt {
        await withCheckedContinuation { continuation in
            // posix_spawn and waitpid block: a plain thread, not the cooperative pool.
            Thread.detachNewThread {
                continuation.resume(returning: Self.run(argv, stdin: payload, timeout: timeout))
            }
        }
    }

    static func run(_ argv: [String], stdin payload: [UInt8], timeout: Duration) -> SinkAttempt {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return .retryable("pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[0], 0)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT, SIGUSR1, SIGUSR2] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let cargs = argv.map { strdup($0) } + [nil]
        defer { cargs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, &attr, cargs, environ)
        close(fds[0])
        guard rc == 0 else {
            close(fds[1])
            return .permanent("cannot run \(argv[0]): \(String(cString: strerror(rc)))")
        }
        // The payload is small (a few KiB) but a child that never reads must not hang us:
        // write without blocking, give up on what doesn't fit.
        _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
        var written = 0
        let deadline = ContinuousClock.now + timeout
        while written < payload.count, ContinuousClock.now < deadline {
            let n = payload[written...].withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }
            if n > 0 { written += n; continue }
            if n < 0 && errno != EAGAIN && errno != EINTR { break }
            usleep(5_000)
        }
        close(fds[1])
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { return .retryable("waitpid: \(String(cString: strerror(errno)))") }
            if ContinuousClock.now >= deadline {
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return .retryable("timed out after \(timeout), killed")
            }
            usleep(10_000)
        }
        let signalled = status & 0x7f
        if signalled != 0 { return .retryable("killed by signal \(signalled)") }
        let code = (status >> 8) & 0xff
        return code == 0 ? .delivered : .retryable("exited with status \(code)")
    }
}

/// POSTs the alert's JSON to a URL; any 2xx means delivered.
struct WebhookSink: AlertSink {
    let name: String
    let url: URL
    /// Never logged: they may carry tokens.
    let headers: [String: String]

    func attempt(_ payload: [UInt8], timeout: Duration) async -> SinkAttempt {
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.timeoutInterval = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("lockvault", forHTTPHeaderField: "User-Agent")
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        request.httpBody = Data(payload)
        let session = URLSession(configuration: .ephemeral)
        defer { session.finishTasksAndInvalidate() }
        do {
            let (_, response) = try await session.data(for: request)
            guard let http = response as? HTTPURLResponse else { return .retryable("no HTTP response") }
            switch http.statusCode {
            case 200..<300: return .delivered
            case 408, 429, 500...: return .retryable("HTTP \(http.statusCode)")
            default: return .permanent("HTTP \(http.statusCode)")
            }
        } catch let error as URLError {
            return .retryable(error.code == .timedOut ? "timed out after \(timeout)" : "\(error.code.rawValue): \(error.localizedDescription)")
        } catch {
            return .retryable("\(error)")
        }
    }
}
