import Foundation
import LockvaultEngine
import Logging
import Testing

@Suite struct MonitorShutdownTests {
    /// Every command-line run and every test makes a Monitor: closing it must end its thread.
    @Test func closeEndsTheMonitorsThread() async {
        let monitor = Monitor(settings: MonitorSettings(sampling: SamplingSettings(targetDSN: "host=/nonexistent")), logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        #expect(monitor.threadIsRunning)
        await monitor.close()
        let deadline = Date().addingTimeInterval(10)
        while monitor.threadIsRunning && Date() < deadline { try? await Task.sleep(for: .milliseconds(5)) }
        #expect(!monitor.threadIsRunning, "the thread ended")
        await monitor.close()   // a second close still returns
    }
}
