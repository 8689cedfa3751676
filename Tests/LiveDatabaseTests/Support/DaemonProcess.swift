import Foundation
import Testing

/// The real `lockvault` binary, started as a child process the way systemd would start it.
final class DaemonProcess {
    let process = Process()
    let logPath: String

    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["LOCKVAULT_TEST_BINARY"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/lockvault").path
    }

    init(arguments: [String], environment extra: [String: String] = [:]) throws {
        logPath = FileManager.default.temporaryDirectory.appendingPathComponent("lv-daemon-\(UUID().uuidString.prefix(8)).log").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "NOTIFY_SOCKET")
        env.removeValue(forKey: "WATCHDOG_USEC")
        env.removeValue(forKey: "JOURNAL_STREAM")
        for (k, v) in extra { env[k] = v }
        process.environment = env
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Waits for exit (or kills it after the deadline); returns the exit status.
    func waitForExit(timeout: Duration = .seconds(15)) async throws -> Int32 {
        try await waitUntil("lockvault exits", timeout: timeout, every: .milliseconds(50)) { !self.process.isRunning }
        return process.terminationStatus
    }

    var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    deinit {
        if process.isRunning { process.terminate() }
        unlink(logPath)
    }

    static func writeConfig(_ yaml: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lv-\(UUID().uuidString.prefix(8)).yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
