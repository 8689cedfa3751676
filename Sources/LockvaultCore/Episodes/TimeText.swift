public import Foundation

/// Times and durations as people type them on the command line and read them in a story:
/// `--since 90m`, `--at '2025-06-01 03:12'`. Pure: the zone a bare time means is passed in.
public enum TimeText {
    /// A positive duration in seconds: `90` or `90s`, `15m`, `2h`, `7d`, `1w`, and sums of these
    /// (`1h30m`, `1d 12h`); fractions allowed (`1.5h`). nil for anything else, zero or negative.
    public static func parseDuration(_ text: String) -> Double? {
        let units: [String: Double] = [
            "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
            "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600, "d": 86_400, "day": 86_400, "days": 86_400,
            "w": 604_800, "week": 604_800, "weeks": 604_800,
        ]
        let chars = Array(text.lowercased().filter { $0 != " " })
        guard !chars.isEmpty else { return nil }
        var total = 0.0, i = 0, parts = 0
        while i < chars.count {
            var number = "", word = ""
            while i < chars.count, chars[i].isASCII, chars[i].isNumber || chars[i] == "." {
                number.append(chars[i])
                i += 1
            }
            while i < chars.count, chars[i].isASCII, chars[i].isLetter {
                word.append(chars[i])
                i += 1
            }
            guard let value = Double(number), value.isFinite else { return nil }
            // A bare number is seconds, but only alone: in "1h30" the unit of the last part must be said.
            guard let unit = word.isEmpty ? (parts == 0 && i == chars.count ? 1 : nil) : units[word] else { return nil }
            total += value * unit
            parts += 1
        }
        return total > 0 && total.isFinite ? total : nil
    }

    /// A moment: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM`, `YYYY-MM-DD HH:MM:SS[.ffffff]` (or with `T`),
    /// followed by an optional zone: `Z`, `UTC`, `+HH`, `+HHMM`, `+HH:MM` (or `-`). Without a
    /// zone it is a time in `zone`. nil for anything else.
    public static func parseTimestamp(_ text: String, zone: TimeZone) -> Date? {
        let u = Array(text.trimmingCharacters(in: .whitespaces).utf8)
        var i = 0
        func digits(_ n: Int) -> Int? {
            guard i + n <= u.count else { return nil }
            var v = 0
            for k in i..<(i + n) {
                guard (48...57).contains(u[k]) else { return nil }
                v = v * 10 + Int(u[k] - 48)
            }
            i += n
            return v
        }
        func take(_ c: Character) -> Bool {
            guard i < u.count, u[i] == c.asciiValue else { return false }
            i += 1
            return true
        }
        guard let year = digits(4), take("-"), let month = digits(2), take("-"), let day = digits(2) else { return nil }
        var hour = 0, minute = 0, second = 0, nanos = 0
        if take("T") || take("t") || take(" ") {
            guard let h = digits(2), take(":"), let m = digits(2) else { return nil }
            hour = h
            minute = m
            if take(":") {
                guard let s = digits(2) else { return nil }
                second = s
                if take(".") || take(",") {
                    var fraction = "", places = 0
                    while i < u.count, (48...57).contains(u[i]) {
                        if places < 9 { fraction.append(Character(UnicodeScalar(u[i]))) }
                        places += 1
                        i += 1
                    }
                    guard !fraction.isEmpty else { return nil }
                    nanos = Int(fraction.padding(toLength: 9, withPad: "0", startingAt: 0)) ?? 0
                }
            }
        }
        while i < u.count, u[i] == 32 { i += 1 }
        var offset: Int?
        if i < u.count {
            let rest = String(decoding: u[i...], as: UTF8.self)
            if rest == "Z" || rest == "z" || rest.uppercased() == "UTC" {
                offset = 0
                i = u.count
            } else if take("+") || take("-") {
                let sign = u[i - 1] == 45 ? -1 : 1
                guard let oh = digits(2), oh <= 23 else { return nil }
                var om = 0
                if take(":") {
                    guard let m = digits(2) else { return nil }
                    om = m
                } else if i < u.count {
                    guard let m = digits(2) else { return nil }
                    om = m
                }
                guard om < 60 else { return nil }
                offset = sign * (oh * 3600 + om * 60)
            } else {
                return nil
            }
        }
        guard i == u.count, (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = offset.flatMap { TimeZone(secondsFromGMT: $0) } ?? zone
        let parts = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second, nanosecond: nanos)
        guard let date = calendar.date(from: parts) else { return nil }
        // Calendar rolls 31 February over into March: a date that does not exist is refused.
        let back = calendar.dateComponents([.year, .month, .day], from: date)
        guard back.year == year, back.month == month, back.day == day else { return nil }
        return date
    }

    /// `2025-06-01 03:12:04+02` (seconds; the zone's offset, `+00` in UTC).
    public static func format(_ date: Date, zone: TimeZone) -> String {
        let c = components(date, zone: zone)
        return String(format: "%04d-%02d-%02d %@", c.year ?? 0, c.month ?? 0, c.day ?? 0, clock(date, zone: zone)) + offsetText(date, zone: zone)
    }

    /// ISO 8601 in UTC with microseconds, `2025-06-01T03:12:04.123456Z`: the JSON form.
    public static func iso8601(_ date: Date) -> String {
        let utc = TimeZone(secondsFromGMT: 0)!
        let totalMicros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var secs = totalMicros / 1_000_000, micros = totalMicros % 1_000_000
        if micros < 0 { micros += 1_000_000; secs -= 1 }
        let whole = Date(timeIntervalSince1970: Double(secs))
        let c = components(whole, zone: utc)
        return String(format: "%04d-%02d-%02dT%@.%06dZ", c.year ?? 0, c.month ?? 0, c.day ?? 0, clock(whole, zone: utc), Int(micros))
    }

    /// `03:12:04` in `zone`.
    public static func clock(_ date: Date, zone: TimeZone) -> String {
        let c = components(date, zone: zone)
        return String(format: "%02d:%02d:%02d", c.hour ?? 0, c.minute ?? 0, c.second ?? 0)
    }

    /// `+02`, `-05:30`, `+00`.
    public static func offsetText(_ date: Date, zone: TimeZone) -> String {
        let seconds = zone.secondsFromGMT(for: date)
        let sign = seconds < 0 ? "-" : "+"
        let a = abs(seconds)
        return sign + String(format: "%02d", a / 3600) + (a % 3600 == 0 ? "" : String(format: ":%02d", a % 3600 / 60))
    }

    /// Seconds for people: `0.4 s`, `7.2 s`, `95 s`, `4 min 05 s`, `2 h 03 min`.
    public static func seconds(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        if s < 10 { return String(format: "%.1f s", s) }
        if s < 120 { return String(format: "%.0f s", s) }
        let whole = Int(s.rounded())
        if whole < 7200 { return String(format: "%d min %02d s", whole / 60, whole % 60) }
        return String(format: "%d h %02d min", whole / 3600, whole % 3600 / 60)
    }

    private static func components(_ date: Date, zone: TimeZone) -> DateComponents {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
    }
}
