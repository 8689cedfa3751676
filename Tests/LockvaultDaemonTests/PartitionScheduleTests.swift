import Foundation
import LockvaultDaemon
import Testing

/// The daemon creates the history partitions ahead at its first cycle, then hourly.
@Suite struct PartitionScheduleTests {
    @Test func dueAtTheFirstCycleThenHourly() {
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(PartitionSchedule.isDue(lastRun: nil, now: t0))
        #expect(!PartitionSchedule.isDue(lastRun: t0, now: t0.addingTimeInterval(600)))
        #expect(!PartitionSchedule.isDue(lastRun: t0, now: t0.addingTimeInterval(3599)))
        #expect(PartitionSchedule.isDue(lastRun: t0, now: t0.addingTimeInterval(3600)))
        // A wall clock set back doesn't postpone it by the jump.
        #expect(PartitionSchedule.isDue(lastRun: t0, now: t0.addingTimeInterval(-60)))
        #expect(PartitionSchedule.daysAhead >= 2)
    }
}
