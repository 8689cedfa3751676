internal import CSystemd
public import Foundation
public import Logging

/// Native journald entries through `sd_journal_sendv`: PRIORITY, MESSAGE, SYSLOG_IDENTIFIER and
/// every metadata key as a `LOCKVAULT_*` field, so
/// `journalctl -u lockvault LOCKVAULT_SEVERITY=CRITICAL -f` finds exactly the events it names.
/// Values travel as length-delimited iovecs: newlines and any bytes are safe.
public struct JournalLogHandler: SharedLevelLogHandler {
    public var metadata: Logger.Metadata = [:]
    public var levelSetting: LogLevelSetting
    public let label: String
    public let identifier: String

    public init(label: String, level: Logger.Level = .info, identifier: String = "lockvault") {
        self.init(label: label, level: LogLevelSetting(level), identifier: identifier)
    }

    public init(label: String, level: LogLevelSetting, identifier: String = "lockvault") {
        self.label = label
        self.levelSetting = level
        self.identifier = identifier
    }

    public func log(event: LogEvent) {
        let all = metadata(with: event.metadata)
        _ = Self.send(fields(level: event.level, message: event.message.description, metadata: all))
    }

    func fields(level: Logger.Level, message: String, metadata: Logger.Metadata) -> [(String, String)] {
        var fields: [(String, String)] = [
            ("PRIORITY", String(Self.priority(level))),
            ("MESSAGE", message),
            ("SYSLOG_IDENTIFIER", identifier),
            ("LOCKVAULT_LOGGER", label),
        ]
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            fields.append((Self.fieldName(key), JSONLogHandler.flatten(value)))
        }
        return fields
    }

    /// swift-log level → syslog priority (0 emerg … 7 debug).
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// `blocker.pid` → `LOCKVAULT_BLOCKER_PID`: journald field names are A–Z, 0–9 and `_`,
    /// and must not start with `_` or a digit.
    public static func fieldName(_ key: String) -> String {
        var name = "LOCKVAULT_"
        for scalar in key.uppercased().unicodeScalars {
            if (scalar >= "A" && scalar <= "Z") || (scalar >= "0" && scalar <= "9") { name.unicodeScalars.append(scalar) } else { name += "_" }
        }
        return String(name.prefix(64))
    }

    /// Sends one entry; returns 0 or a negative errno (no journal socket, for instance).
    @discardableResult
    static func send(_ fields: [(String, String)]) -> Int32 {
        let buffers = fields.map { Array(($0.0 + "=").utf8) + Array($0.1.utf8) }
        var iovecs: [iovec] = []
        var pointers: [UnsafeMutableRawPointer] = []
        for bytes in buffers {
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
            bytes.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
            pointers.append(p)
            iovecs.append(iovec(iov_base: p, iov_len: bytes.count))
        }
        defer { pointers.forEach { $0.deallocate() } }
        return iovecs.withUnsafeBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) }
    }
}

/// Where logs go.
public enum LogDestination: String, Sendable, CaseIterable {
    /// journald when stderr is the journal stream systemd gave us (`JOURNAL_STREAM` matches
    /// stderr's device and inode), JSON lines on stdout otherwise.
    case auto, journal, json

    public func resolved(environment: [String: String]? = nil) -> LogDestination {
        let environment = environment ?? ProcessInfo.processInfo.environment
        guard self == .auto else { return self }
        guard let stream = environment["JOURNAL_STREAM"] else { return .json }
        var st = stat()
        guard fstat(STDERR_FILENO, &st) == 0 else { return .json }
        return stream == "\(st.st_dev):\(st.st_ino)" ? .journal : .json
    }
}

public enum LoggingSetup {
    /// The level every handler made by ``bootstrap(destination:level:)`` reads.
    public static let level = LogLevelSetting(.info)

    /// Bootstraps swift-log once for the process. The destination is fixed from then on; the
    /// level can change (``level``), e.g. on a configuration reload. `now` is the process's
    /// wall clock, for the JSON lines' timestamps (the journal stamps its own).
    public static func bootstrap(destination: LogDestination, level: Logger.Level, now: @escaping @Sendable () -> Date) {
        let resolved = destination.resolved()
        self.level.value = level
        LoggingSystem.bootstrap { label in
            switch resolved {
            case .journal: return JournalLogHandler(label: label, level: Self.level)
            default: return JSONLogHandler(label: label, level: Self.level, now: now)
            }
        }
    }
}
