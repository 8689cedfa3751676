import LockvaultCore
import Testing

/// Every time lockvault reports (cycle_ms, retention's steps, the terminate wait it passes to
/// PostgreSQL) goes through these two conversions.
@Suite struct DurationMillisecondsTests {
    @Test func aReportedTimeKeepsItsFraction() {
        #expect(Duration.microseconds(1_500_250).milliseconds == 1500.25)
        #expect(Duration.seconds(2).milliseconds == 2000)
        #expect(Duration.zero.milliseconds == 0)
    }

    @Test func aTimeoutIsWholeMillisecondsTruncated() {
        #expect(Duration.microseconds(1_500_999).wholeMilliseconds == 1500)
        #expect(Duration.seconds(5).wholeMilliseconds == 5000)
        #expect(Duration.microseconds(999).wholeMilliseconds == 0)
    }
}
