public import Foundation

/// A Swift value that can be sent as a statement parameter, in PostgreSQL's text format.
///
/// Parameters always travel separately from the SQL text (`PQexecParams`), so no value is ever
/// spliced into a statement.
public protocol PostgresEncodable: Sendable {
    /// The parameter's text form; nil sends SQL NULL.
    var postgresText: String? { get }
}

/// A Swift value that can be read from a result column (text format).
public protocol PostgresDecodable: Sendable {
    /// Decode a non-NULL value from its text form.
    static func decode(postgresText text: String) -> Self?
    /// The value for SQL NULL; nil means NULL is an error for this type.
    static var postgresNull: Self? { get }
}

extension PostgresDecodable {
    public static var postgresNull: Self? { nil }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresText: String? { self?.postgresText }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(postgresText text: String) -> Self? {
        Wrapped.decode(postgresText: text).map { .some($0) }
    }
    public static var postgresNull: Self? { .some(.none) }
}

extension String: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { self }
    public static func decode(postgresText text: String) -> String? { text }
}

extension Bool: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { self ? "t" : "f" }
    public static func decode(postgresText text: String) -> Bool? {
        switch text {
        case "t", "true", "on", "1": return true
        case "f", "false", "off", "0": return false
        default: return nil
        }
    }
}

extension Int: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { String(self) }
    public static func decode(postgresText text: String) -> Int? { Int(text) }
}

extension Int16: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { String(self) }
    public static func decode(postgresText text: String) -> Int16? { Int16(text) }
}

extension Int32: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { String(self) }
    public static func decode(postgresText text: String) -> Int32? { Int32(text) }
}

extension Int64: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { String(self) }
    public static func decode(postgresText text: String) -> Int64? { Int64(text) }
}

/// `oid`, `xid` and `regclass`-as-number columns.
extension UInt32: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { String(self) }
    public static func decode(postgresText text: String) -> UInt32? { UInt32(text) }
}

extension Double: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? {
        if isNaN { return "NaN" }
        if isInfinite { return self > 0 ? "Infinity" : "-Infinity" }
        return "\(self)"
    }
    public static func decode(postgresText text: String) -> Double? {
        switch text {
        case "NaN": return .nan
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        default: return Double(text)
        }
    }
}

/// `timestamptz`, to the microsecond. Sessions run with `TimeZone=UTC` and `DateStyle=ISO`, so
/// values arrive as `2026-11-23 03:11:48.123456+00`; other offsets are honoured too.
extension Date: PostgresEncodable, PostgresDecodable {
    public var postgresText: String? { PostgresTimestamp.format(self) }
    public static func decode(postgresText text: String) -> Date? { PostgresTimestamp.parse(text) }
}

/// `bytea` (hex output format).
extension Array: PostgresEncodable where Element: PostgresArrayElement {
    public var postgresText: String? { Element.encodeArray(self) }
}

extension Array: PostgresDecodable where Element: PostgresArrayElement {
    public static func decode(postgresText text: String) -> [Element]? { Element.decodeArray(text) }
}

/// Element types of the arrays lockvault exchanges: `int[]` / `bigint[]` / `text[]` as arrays,
/// and `[UInt8]` as `bytea`.
public protocol PostgresArrayElement: Sendable {
    static func encodeArray(_ values: [Self]) -> String
    static func decodeArray(_ text: String) -> [Self]?
}

extension UInt8: PostgresArrayElement {
    public static func encodeArray(_ values: [UInt8]) -> String { "\\x" + Hex.encode(values) }
    public static func decodeArray(_ text: String) -> [UInt8]? {
        guard text.hasPrefix("\\x") else { return nil }
        return Hex.decode(text.dropFirst(2))
    }
}

extension Int32: PostgresArrayElement {
    public static func encodeArray(_ values: [Int32]) -> String { "{" + values.map(String.init).joined(separator: ",") + "}" }
    public static func decodeArray(_ text: String) -> [Int32]? {
        guard let items = PostgresArrayText.elements(text) else { return nil }
        var out: [Int32] = []
        for item in items {
            guard let item, let value = Int32(item) else { return nil }
            out.append(value)
        }
        return out
    }
}

extension Int64: PostgresArrayElement {
    public static func encodeArray(_ values: [Int64]) -> String { "{" + values.map(String.init).joined(separator: ",") + "}" }
    public static func decodeArray(_ text: String) -> [Int64]? {
        guard let items = PostgresArrayText.elements(text) else { return nil }
        var out: [Int64] = []
        for item in items {
            guard let item, let value = Int64(item) else { return nil }
            out.append(value)
        }
        return out
    }
}

extension String: PostgresArrayElement {
    public static func encodeArray(_ values: [String]) -> String {
        "{" + values.map { value in
            var quoted = "\""
            for ch in value {
                if ch == "\"" || ch == "\\" { quoted.append("\\") }
                quoted.append(ch)
            }
            return quoted + "\""
        }.joined(separator: ",") + "}"
    }
    public static func decodeArray(_ text: String) -> [String]? {
        guard let items = PostgresArrayText.elements(text) else { return nil }
        var out: [String] = []
        for item in items {
            guard let item else { return nil }
            out.append(item)
        }
        return out
    }
}

/// An `interval`, as PostgreSQL keeps it: months, days and microseconds are separate because a
/// month has no fixed length.
public struct PostgresInterval: Sendable, Hashable, PostgresEncodable, PostgresDecodable {
    public var months: Int32
    public var days: Int32
    public var microseconds: Int64

    public init(months: Int32 = 0, days: Int32 = 0, microseconds: Int64 = 0) {
        self.months = months
        self.days = days
        self.microseconds = microseconds
    }

    public init(seconds: Double) {
        self.init(microseconds: Int64((seconds * 1_000_000).rounded()))
    }

    /// Seconds, counting a month as 30 days and a day as 24 h, as `extract(epoch from …)` does.
    public var seconds: Double {
        Double(months) * 30 * 86400 + Double(days) * 86400 + Double(microseconds) / 1_000_000
    }

    public var postgresText: String? {
        "\(months) mons \(days) days \(Double(microseconds) / 1_000_000) seconds"
    }

    /// Parses `IntervalStyle = iso_8601` output, e.g. `P1Y2M3DT4H5M6.5S`, `PT-0.25S`, `PT0S`.
    public static func decode(postgresText text: String) -> PostgresInterval? {
        var rest = Substring(text)
        guard rest.first == "P" else { return nil }
        rest = rest.dropFirst()
        var result = PostgresInterval()
        var inTime = false
        var number = ""
        for ch in rest {
            if ch == "T" { inTime = true; continue }
            if ch.isNumber || ch == "-" || ch == "." || ch == "+" { number.append(ch); continue }
            guard let value = Double(number) else { return nil }
            number = ""
            switch (inTime, ch) {
            case (false, "Y"): result.months += Int32(value * 12)
            case (false, "M"): result.months += Int32(value)
            case (false, "W"): result.days += Int32(value * 7)
            case (false, "D"): result.days += Int32(value)
            case (true, "H"): result.microseconds += Int64((value * 3_600_000_000).rounded())
            case (true, "M"): result.microseconds += Int64((value * 60_000_000).rounded())
            case (true, "S"): result.microseconds += Int64((value * 1_000_000).rounded())
            default: return nil
            }
        }
        return number.isEmpty ? result : nil
    }
}

/// Parsing of PostgreSQL's one-dimensional array text output (`{1,2,NULL,"a b"}`).
enum PostgresArrayText {
    static func elements(_ text: String) -> [String?]? {
        var chars = Substring(text)
        // Arrays with non-default bounds come as "[0:2]={...}".
        if chars.first == "[", let eq = chars.firstIndex(of: "=") { chars = chars[chars.index(after: eq)...] }
        guard chars.first == "{", chars.last == "}" else { return nil }
        chars = chars.dropFirst().dropLast()
        if chars.isEmpty { return [] }
        var items: [String?] = []
        var current = ""
        var quoted = false, wasQuoted = false, escaped = false
        for ch in chars {
            if escaped { current.append(ch); escaped = false; continue }
            if quoted {
                if ch == "\\" { escaped = true } else if ch == "\"" { quoted = false } else { current.append(ch) }
                continue
            }
            switch ch {
            case "\"": quoted = true; wasQuoted = true
            case ",":
                items.append(!wasQuoted && current == "NULL" ? nil : current)
                current = ""; wasQuoted = false
            case "{", "}": return nil  // multi-dimensional arrays are not used by lockvault
            default: current.append(ch)
            }
        }
        items.append(!wasQuoted && current == "NULL" ? nil : current)
        return items
    }
}

enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: Substring) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// `timestamptz` text ⇄ `Date`, to the microsecond, without DateFormatter (slow, and it drops
/// microseconds).
public enum PostgresTimestamp {
    /// `YYYY-MM-DD HH:MM:SS.ffffff+00` in UTC.
    public static func format(_ date: Date) -> String {
        let totalMicros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var days = totalMicros / 86_400_000_000
        var micros = totalMicros % 86_400_000_000
        if micros < 0 { micros += 86_400_000_000; days -= 1 }
        let (y, m, d) = civil(fromDays: days)
        let secs = micros / 1_000_000
        let frac = micros % 1_000_000
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2)) \(pad(secs / 3600, 2)):\(pad(secs / 60 % 60, 2)):\(pad(secs % 60, 2)).\(pad(frac, 6))+00"
    }

    /// Parses `YYYY-MM-DD HH:MM:SS[.f…][+HH[:MM[:SS]]]` (also with `T`); nil for anything else,
    /// including `infinity`.
    public static func parse(_ text: String) -> Date? {
        let u = Array(text.utf8)
        var i = 0
        func number(_ count: Int) -> Int64? {
            guard i + count <= u.count else { return nil }
            var v: Int64 = 0
            for k in i..<(i + count) {
                let c = u[k]
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int64(c - 48)
            }
            i += count
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < u.count, u[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = number(4), expect(45), let month = number(2), expect(45), let day = number(2) else { return nil }
        guard i < u.count, u[i] == 32 || u[i] == 84 else { return nil }
        i += 1
        guard let hour = number(2), expect(58), let minute = number(2), expect(58), let second = number(2) else { return nil }
        var micros: Int64 = 0
        if i < u.count, u[i] == 46 {
            i += 1
            var digits = 0
            while i < u.count, u[i] >= 48, u[i] <= 57 {
                if digits < 6 { micros = micros * 10 + Int64(u[i] - 48) }
                digits += 1
                i += 1
            }
            for _ in digits..<max(digits, 6) { micros *= 10 }
        }
        var offsetSeconds: Int64 = 0
        if i < u.count {
            let sign: Int64
            switch u[i] {
            case 43: sign = 1
            case 45: sign = -1
            case 90: sign = 0
            default: return nil
            }
            i += 1
            if sign != 0 {
                guard let oh = number(2) else { return nil }
                var off = oh * 3600
                if expect(58) { guard let om = number(2) else { return nil }; off += om * 60 }
                if expect(58) { guard let os = number(2) else { return nil }; off += os }
                offsetSeconds = sign * off
            }
        }
        guard i == u.count, (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        let days = daysFromCivil(year, month, day)
        let seconds = days * 86400 + hour * 3600 + minute * 60 + second - offsetSeconds
        return Date(timeIntervalSince1970: Double(seconds) + Double(micros) / 1_000_000)
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let s = String(value)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    // Howard Hinnant's civil-from-days algorithms (proleptic Gregorian).
    static func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (m + 9) % 12
        let doy = (153 * mp + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}
