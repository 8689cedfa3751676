import Foundation
import LockvaultCore
import LockvaultDaemon
import LockvaultEngine
import Logging
import PostgresClient
import Synchronization
import Testing

extension LiveDatabaseSuite {
    /// The daemon reads time only from its injected clock: moved an hour on, the vault's
    /// hourly maintenance runs at the next cycle, not an hour of real time later.
    @Suite struct DaemonClockLiveTests {
        /// Keeps every message logged, for the test to read.
        struct RecordingLogHandler: LogHandler {
            let box: RecordingBox
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .trace
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }

            func log(event: LogEvent) {
                box.append(event.message.description)
            }
        }

        @Test func movingTheClockAnHourRunsTheHourlyAnalysisAtTheNextCycle() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                do {
                    let admin = try LiveDatabase.connect(database: db)
                    defer { admin.close() }
                    try Migrator().apply(on: admin)
                }
                let wall = MovableWall(Date(timeIntervalSince1970: 1_800_000_000))
                let clock = MonitorClock(now: { .now }, date: { wall.date }, random: { 0.5 })
                let box = RecordingBox()
                var config = LockvaultConfig()
                config.monitor.sampling.targetDSN = "dbname=\(db)"
                config.schedule.analyzeIntervalSeconds = 3600
                let daemon = Daemon(config: config, configPath: "/nonexistent", logger: Logger(label: "test") { _ in box.handler }, clock: clock)
                let first = await daemon.runCycle()
                #expect(first.succeeded, "\(first.statusLine)")
                #expect(!box.messages.contains("analyze_lock_waits"), "not due at the start")
                wall.move(1800)
                _ = await daemon.runCycle()
                #expect(!box.messages.contains("analyze_lock_waits"), "half an hour on: not due")
                wall.move(1800)
                let third = await daemon.runCycle()
                #expect(third.succeeded, "\(third.statusLine)")
                #expect(box.messages.contains("analyze_lock_waits"), "an hour on by the clock: due, though the test took seconds: \(box.messages)")
                await daemon.shutdown()
            }
        }
    }
}

/// A log handler's shared message list (handlers are values; the list outlives them).
final class RecordingBox: Sendable {
    private let list = Mutex<[String]>([])
    var messages: [String] { list.withLock { $0 } }
    var handler: LiveDatabaseSuite.DaemonClockLiveTests.RecordingLogHandler { .init(box: self) }
    func append(_ message: String) { list.withLock { $0.append(message) } }
}

/// Wall-clock time that moves only when the test moves it.
final class MovableWall: Sendable {
    private let current: Mutex<Date>
    init(_ start: Date) { current = Mutex(start) }
    var date: Date { current.withLock { $0 } }
    func move(_ seconds: TimeInterval) { current.withLock { $0 += seconds } }
}
