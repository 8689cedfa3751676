import Foundation
import Subprocess
#if canImport(System)
import System
#else
import SystemPackage
#endif

/// A program (the real `lockvault` binary, most often) started the way a shell or systemd would
/// start it, through swift-subprocess: an empty signal mask and default dispositions, so a
/// daemon child gets the SIGTERM and SIGHUP the test runner itself blocks. Standard output and
/// standard error go to files, which a test may read while the child runs.
public final class ChildProcess: @unchecked Sendable {
    /// The child's process id.
    public let pid: Int32
    private let stdoutPath: String
    private let stderrPath: String
    private let exit: Task<Int32, any Error>
    private let exitStatus = ExitStatus()

    /// What one finished command printed and how it exited.
    public struct Result: CustomStringConvertible, Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var output: String { stdout + stderr }
        public var description: String { "exit \(status)\n--- stdout\n\(stdout)\n--- stderr\n\(stderr)" }
    }

    /// The binary under test: `LOCKVAULT_TEST_BINARY` (scripts/test.sh sets it), else the debug build.
    public static var lockvaultBinary: String {
        if let path = ProcessInfo.processInfo.environment["LOCKVAULT_TEST_BINARY"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/lockvault").path
    }

    /// Variables of systemd's that would make a child talk to the test runner's own supervisor.
    static let supervisorVariables: Set<String> = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "INVOCATION_ID"]

    /// Starts `lockvault <arguments>`.
    public convenience init(lockvault arguments: [String], environment extra: [String: String] = [:],
                            inheriting inherit: @Sendable (String) -> Bool = { _ in true }, combinedOutput: Bool = false) async throws {
        try await self.init(path: Self.lockvaultBinary, arguments: arguments, environment: extra, inheriting: inherit, combinedOutput: combinedOutput)
    }

    /// Starts `path` with the test runner's environment, less systemd's variables and those
    /// `inherit` refuses, plus `extra`. With `combinedOutput`, standard error goes into the same
    /// file as standard output, interleaved as written (``stdout`` has both, ``stderr`` is empty).
    public init(path: String, arguments: [String], environment extra: [String: String] = [:],
                inheriting inherit: @Sendable (String) -> Bool = { _ in true }, combinedOutput: Bool = false) async throws {
        let tmp = FileManager.default.temporaryDirectory.path
        let tag = UUID().uuidString.prefix(8)
        stdoutPath = "\(tmp)/lv-child-\(tag).out"
        stderrPath = combinedOutput ? stdoutPath : "\(tmp)/lv-child-\(tag).err"
        var env = ProcessInfo.processInfo.environment.filter { !Self.supervisorVariables.contains($0.key) && inherit($0.key) }
        for (k, v) in extra { env[k] = v }
        let environment = Environment.custom(Dictionary(uniqueKeysWithValues: env.map { (Environment.Key(stringLiteral: $0.key), $0.value) }))
        // O_APPEND: with combinedOutput both descriptors write one file without overwriting each other.
        let options: FileDescriptor.OpenOptions = [.create, .truncate, .append]
        let out = try FileDescriptor.open(FilePath(stdoutPath), .writeOnly, options: options, permissions: [.ownerReadWrite])
        let err = try FileDescriptor.open(FilePath(stderrPath), .writeOnly, options: combinedOutput ? [.append] : options, permissions: [.ownerReadWrite])

        let (started, announce) = AsyncStream<pid_t>.makeStream()
        let exitStatus = exitStatus
        exit = Task {
            defer { announce.finish() }
            let result = try await Subprocess.run(
                .path(FilePath(path)), arguments: Arguments(arguments), environment: environment, input: .none,
                output: .fileDescriptor(out, closeAfterSpawningProcess: true),
                error: .fileDescriptor(err, closeAfterSpawningProcess: true)
            ) { execution in
                announce.yield(execution.processIdentifier.value)
                announce.finish()
            }
            let code: Int32 = switch result.terminationStatus {
            case .exited(let code): code
            case .signaled(let signal): 128 + signal
            }
            exitStatus.set(code)
            return code
        }
        var child: pid_t?
        for await pid in started { child = pid }
        guard let child else {
            // It never started: the run's error says why.
            _ = try await exit.value
            throw SpawnFailed(path: path)
        }
        pid = child
    }

    deinit {
        if isRunning { kill(pid, SIGKILL) }
        for path in Set([stdoutPath, stderrPath]) { unlink(path) }
    }

    public var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var stderr: String { stderrPath == stdoutPath ? "" : (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    /// Everything it printed so far.
    public var output: String { stdout + stderr }

    public func signal(_ sig: Int32) { if isRunning { kill(pid, sig) } }

    public var isRunning: Bool { exitStatus.get() == nil }

    /// Waits for exit; after `timeout` it is killed (SIGKILL) and the wait fails.
    public func waitForExit(timeout: Duration = .seconds(60)) async throws -> Result {
        let exit = exit
        let status: Int32? = await withTaskGroup(of: Int32?.self) { group in
            group.addTask { (try? await exit.value) ?? -1 }
            group.addTask { try? await Task.sleep(for: timeout); return nil }
            let first = await group.next() ?? nil
            if first == nil { kill(pid, SIGKILL) }
            group.cancelAll()
            _ = await group.next()
            return first
        }
        guard let status else {
            throw ChildTimedOut(description: "process \(pid) did not exit within \(timeout); output so far:\n\(output)")
        }
        return Result(status: status, stdout: stdout, stderr: stderr)
    }

    /// Runs `lockvault <arguments>` to completion.
    public static func lockvault(_ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(60)) async throws -> Result {
        try await ChildProcess(lockvault: arguments, environment: environment).waitForExit(timeout: timeout)
    }

    /// Resident set size in kB (from /proc), nil once it exited.
    public var residentKB: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }
}

public struct SpawnFailed: Error, CustomStringConvertible {
    public let path: String
    public var description: String { "cannot start \(path)" }
}

public struct ChildTimedOut: Error, CustomStringConvertible {
    public let description: String
}

/// The child's exit code (128 + n when killed by signal n), once swift-subprocess has reaped it.
private final class ExitStatus: @unchecked Sendable {
    private let lock = NSLock()
    private var code: Int32?
    func set(_ value: Int32) { lock.withLock { code = value } }
    func get() -> Int32? { lock.withLock { code } }
}
