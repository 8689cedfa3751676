import Testing
@testable import LockvaultDaemon

@Suite struct CycleProgressTests {
    func ping(_ progress: inout CycleProgress) -> Bool { progress.takePing() }

    @Test func pingsAfterACompletedCycle() {
        var progress = CycleProgress()
        progress.cycleStarted()
        progress.cycleFinished()
        #expect(ping(&progress))
    }

    @Test func aHungCycleGetsNoPingOnceItsCompletionWasUsed() {
        var progress = CycleProgress()
        progress.cycleStarted()
        progress.cycleFinished()
        #expect(ping(&progress))
        progress.cycleStarted()          // this one never finishes
        #expect(!ping(&progress))
        #expect(!ping(&progress))
        progress.cycleFinished()
        #expect(ping(&progress))
    }

    @Test func idleBetweenLongIntervalsIsNotAHang() {
        var progress = CycleProgress()
        progress.cycleStarted()
        progress.cycleFinished()
        #expect(ping(&progress))
        #expect(ping(&progress), "no cycle running: waiting for the next tick is healthy")
    }
}
