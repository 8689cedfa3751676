import Foundation
import Testing
@testable import PostgresClient

/// An actor on its own thread, as the Monitor and PostgresSession are.
actor OnOwnThread {
    let executor = ThreadExecutor(name: "lockvault-test")
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private var calls = 0
    func call() -> Int { calls += 1; return calls }
    func stop() { executor.shutdown() }
}

func waitUntil(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while !condition() {
        if Date() > deadline { return false }
        Thread.sleep(forTimeInterval: 0.005)
    }
    return true
}

@Suite struct ThreadExecutorTests {
    @Test func shutdownEndsTheThreadAndALateCallStillRuns() async {
        let actor = OnOwnThread()
        #expect(await actor.call() == 1)
        #expect(actor.executor.isRunning)
        await actor.stop()
        #expect(waitUntil { !actor.executor.isRunning }, "the thread ends after shutdown")
        #expect(await actor.call() == 2, "a call after shutdown is not lost")
        #expect(waitUntil { !actor.executor.isRunning }, "and its thread ends again")
    }
}
