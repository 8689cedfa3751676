public import Foundation
public import Logging

/// One JSON object per line: `{"ts":"2026-11-23T03:11:48.123Z","level":"info","label":"lockvault","msg":"…",…metadata}`.
///
/// Every string is escaped (quotes, backslashes, control characters; invalid UTF-8 was already
/// replaced when it became a Swift String), so `tail -f | jq` never meets a broken line,
/// whatever application names or queries contain. Each line is written with one `write(2)`.
public struct JSONLogHandler: SharedLevelLogHandler {
    public var metadata: Logger.Metadata = [:]
    public var levelSetting: LogLevelSetting
    public let label: String
    private let fd: Int32
    /// The wall clock the `ts` field reads: whoever builds the handler passes the process's one
    /// clock (Core's `MonitorClock`, which this target can't see), so a test that moves that
    /// clock moves the log's timestamps too.
    private let now: @Sendable () -> Date

    public init(label: String, level: Logger.Level = .info, fileDescriptor: Int32 = 1, now: @escaping @Sendable () -> Date) {
        self.init(label: label, level: LogLevelSetting(level), fileDescriptor: fileDescriptor, now: now)
    }

    public init(label: String, level: LogLevelSetting, fileDescriptor: Int32 = 1, now: @escaping @Sendable () -> Date) {
        self.label = label
        self.levelSetting = level
        self.fd = fileDescriptor
        self.now = now
    }

    public func log(event: LogEvent) {
        var line = "{\"ts\":" + Self.quote(Self.timestamp(now())) + ",\"level\":" + Self.quote(event.level.rawValue)
            + ",\"label\":" + Self.quote(label) + ",\"msg\":" + Self.quote(event.message.description)
        let all = metadata(with: event.metadata)
        for (key, value) in all.sorted(by: { $0.key < $1.key }) where !["ts", "level", "label", "msg"].contains(key) {
            line += "," + Self.quote(key) + ":" + Self.quote(Self.flatten(value))
        }
        line += "}\n"
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n <= 0 { if errno == EINTR { continue }; return }
                offset += n
            }
        }
    }

    static func flatten(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): return s
        case .stringConvertible(let c): return c.description
        case .array(let a): return "[" + a.map(flatten).joined(separator: ", ") + "]"
        case .dictionary(let d): return "{" + d.sorted { $0.key < $1.key }.map { "\($0.key): \(flatten($0.value))" }.joined(separator: ", ") + "}"
        }
    }

    /// A JSON string literal for `s`.
    static func quote(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// RFC 3339, UTC, milliseconds.
    static func timestamp(_ date: Date) -> String {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var t = time_t(ms / 1000)
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday),
                      Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec), Int(ms % 1000))
    }
}
