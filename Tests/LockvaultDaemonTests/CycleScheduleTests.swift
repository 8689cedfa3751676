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

@Suite struct BackoffTests {
    @Test func growsExponentiallyUpToTheCap() {
        var backoff = Backoff(base: .milliseconds(100), cap: .seconds(2))
        let ceilings = (0..<8).map { _ in backoff.nextDelay(random: 0.999_999) }
        #expect(ceilings[0] < .milliseconds(101) && ceilings[0] > .milliseconds(99))
        #expect(ceilings[1] > .milliseconds(199))
        #expect(ceilings.allSatisfy { $0 <= .seconds(2) })
        #expect(ceilings[7] > .milliseconds(1999))
    }

    @Test func jitterScalesTheDelayAndResetStartsOver() {
        var backoff = Backoff(base: .seconds(1), cap: .seconds(10))
        #expect(backoff.nextDelay(random: 0) == .zero)
        #expect(backoff.nextDelay(random: 0.5) == .seconds(1))
        backoff.reset()
        #expect(backoff.currentCeiling == .seconds(1))
    }
}
