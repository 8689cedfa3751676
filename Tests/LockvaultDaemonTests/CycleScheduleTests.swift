import Testing
@testable import LockvaultDaemon

@Suite struct CycleScheduleTests {
    let start = ContinuousClock.now
    var schedule: CycleSchedule { CycleSchedule(start: start, interval: .seconds(1)) }

    @Test func fastCyclesStayOnTheGrid() {
        #expect(schedule.nextTick(after: start + .milliseconds(3)) == start + .seconds(1))
        #expect(schedule.nextTick(after: start + .milliseconds(1003)) == start + .seconds(2))
    }

    @Test func aSlowCycleDelaysButNeverOverlapsAndSkipsMissedSlots() {
        let began = start + .seconds(5)
        let next = schedule.nextTick(after: began + .milliseconds(2500))
        #expect(next == start + .seconds(8))
        #expect(schedule.skippedSlots(began: began, next: next) == 2)
        #expect(schedule.skippedSlots(began: start, next: start + .seconds(1)) == 0)
    }

    @Test func finishingExactlyOnATickWaitsForTheNextOne() {
        #expect(schedule.nextTick(after: start + .seconds(3)) == start + .seconds(4))
    }
}
