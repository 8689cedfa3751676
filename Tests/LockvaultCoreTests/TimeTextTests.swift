import Foundation
import Testing
@testable import LockvaultCore

@Suite struct TimeTextTests {
    static let utc = TimeZone(secondsFromGMT: 0)!
    static let paris = TimeZone(identifier: "Europe/Paris")!

    @Test func durationsAsPeopleTypeThem() {
        let cases: [(String, Double)] = [
            ("90", 90), ("90s", 90), ("15m", 900), ("15min", 900), ("2h", 7200), ("7d", 604_800), ("1w", 604_800), ("1h30m", 5400),
            ("1d 12h", 129_600), ("1.5h", 5400), ("24 hours", 86_400), ("30 seconds", 30),
        ]
        for (text, seconds) in cases { #expect(TimeText.parseDuration(text) == seconds, "\(text)") }
    }

    @Test func durationsThatAreNotRefused() {
        for text in ["", "abc", "10x", "1h30", "-5m", "0", "0s", "1e400", "15ms", "m", "1..5h", "h5"] {
            #expect(TimeText.parseDuration(text) == nil, "'\(text)' should be refused")
        }
    }

    @Test func timestampsWithAndWithoutZones() throws {
        let base = try #require(TimeText.parseTimestamp("2025-06-01 03:12:04Z", zone: Self.paris))
        #expect(base.timeIntervalSince1970 == 1_748_747_524)
        #expect(TimeText.parseTimestamp("2025-06-01T03:12:04+00:00", zone: Self.paris) == base)
        #expect(TimeText.parseTimestamp("2025-06-01 05:12:04+02", zone: Self.utc) == base)
        #expect(TimeText.parseTimestamp("2025-06-01 05:12:04 +0200", zone: Self.utc) == base)
        #expect(TimeText.parseTimestamp("2025-06-01 03:12:04 UTC", zone: Self.paris) == base)
        // No zone: the zone given (Paris is UTC+2 in June).
        #expect(TimeText.parseTimestamp("2025-06-01 05:12:04", zone: Self.paris) == base)
        #expect(TimeText.parseTimestamp("2025-06-01 03:12", zone: Self.utc) == base.addingTimeInterval(-4))
        #expect(TimeText.parseTimestamp("2025-06-01", zone: Self.utc) == base.addingTimeInterval(-(3 * 3600 + 12 * 60 + 4)))
        let fraction = try #require(TimeText.parseTimestamp("2025-06-01T03:12:04.123456+00:00", zone: Self.utc))
        #expect(abs(fraction.timeIntervalSince(base) - 0.123456) < 0.000_001)
    }

    @Test func timestampsThatAreRefused() {
        for text in ["yesterday", "2025-13-01", "2025-02-30 10:00", "2025-06-01 25:00", "2025-06-01 03:12:04 Mars", "2025-06-01T", "03:12",
                     "2025-06-01 03:12:04+2", "2025-06-01 03:12:04."] {
            #expect(TimeText.parseTimestamp(text, zone: Self.utc) == nil, "'\(text)' should be refused")
        }
    }

    @Test func formatting() throws {
        let d = try #require(TimeText.parseTimestamp("2025-06-01 03:12:04.999Z", zone: Self.utc))
        #expect(TimeText.format(d, zone: Self.utc) == "2025-06-01 03:12:04+00")
        #expect(TimeText.format(d, zone: Self.paris) == "2025-06-01 05:12:04+02")
        #expect(TimeText.iso8601(d) == "2025-06-01T03:12:04.999000Z")
        #expect(TimeText.seconds(0.44) == "0.4 s" && TimeText.seconds(95) == "95 s" && TimeText.seconds(245) == "4 min 05 s" && TimeText.seconds(7380) == "2 h 03 min")
    }
}
