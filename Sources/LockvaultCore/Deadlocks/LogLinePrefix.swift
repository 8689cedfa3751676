public import Foundation

/// The server's `log_line_prefix`, compiled into a reader of its stderr log lines (the way
/// pgBadger does it): each escape becomes a pattern of what PostgreSQL prints for it, so any
/// prefix a site chose can be read — the database (`%d`), pid (`%p`), time (`%m`, `%t`, `%n`)
/// and the rest — without assuming one. Pure: unit-tested on real lines.
///
/// What follows the prefix is PostgreSQL's `SEVERITY:  message` (English severity names, as
/// with `lc_messages = 'C'` or `en_*`). Everything after `%q` is absent in the lines of
/// non-session processes; `%-10a`-style padding is allowed.
public struct LogLinePrefix: Sendable, Hashable {
    /// What one line said about itself.
    public struct Line: Sendable, Hashable {
        /// `%m`, `%t` or `%n`, when the prefix has one of them.
        public var timestamp: Date?
        public var pid: Int32?
        public var user: String?
        public var database: String?
        public var application: String?
        /// `%e`: the SQLSTATE of the message (00000 for LOG lines).
        public var sqlState: String?
        /// ERROR, DETAIL, LOG, …
        public var severity: String
        public var message: String
    }

    /// The prefix as the server has it (`SHOW log_line_prefix`).
    public let prefix: String
    private let pattern: String
    /// Which escape each capture group holds, in order.
    private let captures: [Character]
    private let regex: Regex

    /// A compiled pattern; NSRegularExpression is immutable once made.
    private struct Regex: @unchecked Sendable, Hashable {
        let value: NSRegularExpression
        static func == (a: Regex, b: Regex) -> Bool { a.value.pattern == b.value.pattern }
        func hash(into h: inout Hasher) { h.combine(value.pattern) }
    }

    /// PostgreSQL's severities, as they appear after the prefix.
    static let severities = "DEBUG[1-5]?|LOG|INFO|NOTICE|WARNING|ERROR|FATAL|PANIC|DETAIL|HINT|QUERY|CONTEXT|LOCATION|STATEMENT"

    public init(_ prefix: String) {
        self.prefix = prefix
        var pattern = "^"
        var captures: [Character] = []
        var optionalOpen = false
        var chars = Array(prefix)[...]
        var literal = ""
        func flushLiteral() {
            if !literal.isEmpty { pattern += NSRegularExpression.escapedPattern(for: literal); literal = "" }
        }
        while let c = chars.popFirst() {
            guard c == "%" else { literal.append(c); continue }
            // Optional padding: %-10a, %10p.
            var padded = false
            if chars.first == "-" { chars.removeFirst(); padded = true }
            while let d = chars.first, d.isNumber { chars.removeFirst(); padded = true }
            guard let escape = chars.popFirst() else { literal.append("%"); break }
            if escape == "%" { literal.append("%"); continue }
            flushLiteral()
            if escape == "q" {
                if !optionalOpen { pattern += "(?:"; optionalOpen = true }
                continue
            }
            guard let piece = Self.piece(escape) else { continue }   // unknown escapes print nothing
            captures.append(escape)
            pattern += padded ? " *(\(piece)) *" : "(\(piece))"
        }
        flushLiteral()
        if optionalOpen { pattern += ")?" }
        pattern += "(\(Self.severities)):  (.*)$"
        self.pattern = pattern
        self.captures = captures
        // The pattern is built from escaped literals and fixed pieces: it always compiles.
        self.regex = Regex(value: try! NSRegularExpression(pattern: pattern, options: [.dotMatchesLineSeparators]))
    }

    /// What PostgreSQL prints for an escape, as a pattern (nil: prints nothing).
    static func piece(_ escape: Character) -> String? {
        let timestamp = #"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"#
        switch escape {
        case "a", "u", "d", "r", "h", "b", "i": return ".*?"       // free text, may be empty
        case "p", "l": return #"\d+"#
        case "P": return #"\d*"#                                      // parallel leader, empty otherwise
        case "x": return #"\d*"#
        case "v": return #"[0-9]*/?[0-9]*"#                           // virtual transaction id, may be empty
        case "c": return #"[0-9a-f]+\.[0-9a-f]+"#
        case "e": return "[0-9A-Z]{5}"
        case "m": return timestamp + #"\.\d+ ?\S*"#                   // with milliseconds and zone
        case "t", "s": return timestamp + #" ?\S*"#
        case "n": return #"\d+\.\d+"#                                 // epoch with milliseconds
        case "Q": return #"-?\d+"#                                    // query id
        default: return nil
        }
    }

    /// Reads one line (its first physical line: continuations start with a tab); nil when it
    /// does not start with this prefix and a severity.
    public func parse(_ line: Substring) -> Line? {
        let text = String(line)
        let ns = text as NSString
        guard let m = regex.value.firstMatch(in: text, range: NSRange(location: 0, length: ns.length)) else { return nil }
        func group(_ i: Int) -> String? {
            let r = m.range(at: i)
            return r.location == NSNotFound ? nil : ns.substring(with: r)
        }
        var result = Line(timestamp: nil, pid: nil, user: nil, database: nil, application: nil, sqlState: nil,
                          severity: group(captures.count + 1) ?? "", message: group(captures.count + 2) ?? "")
        for (i, escape) in captures.enumerated() {
            guard let value = group(i + 1) else { continue }   // inside an absent %q part
            switch escape {
            case "m", "t": result.timestamp = result.timestamp ?? LogTimestamp.parse(value)
            case "n": result.timestamp = result.timestamp ?? Double(value).map { Date(timeIntervalSince1970: $0) }
            case "p": result.pid = Int32(value)
            case "u": result.user = value.isEmpty ? nil : value
            case "d": result.database = value.isEmpty ? nil : value
            case "a": result.application = value
            case "e": result.sqlState = value
            default: break
            }
        }
        return result
    }

    /// Debian's and lockvault's test clusters' default.
    public static let debianDefault = "%m [%p] %q%u@%d "
}
