import Foundation
public import LockvaultCore
public import LockvaultEngine
public import Logging
public import ServiceLifecycle
import Synchronization

/// Fans alerts out to the configured sinks without ever holding up a sampling cycle.
///
/// ``submit(_:)`` only enqueues (per sink, bounded: when a sink falls behind, its oldest alert
/// is dropped and counted). Each sink has one delivery task that works through its queue in
/// order, with a timeout per attempt and exponential backoff between retries, so a slow or
/// dead webhook delays only its own later alerts. Runs as a service of the daemon's
/// ServiceGroup; on shutdown it stops taking alerts and gives queued ones a few seconds.
public final class AlertDispatcher: Service, Sendable {
    struct Lane: Sendable {
        let sink: any AlertSink
        let settings: AlertSinkSettings
        let stream: AsyncStream<Alert>
        let continuation: AsyncStream<Alert>.Continuation
    }

    private let lanes: [Lane]
    private let logger: Logger
    private let onDelivery: @Sendable (AlertDeliveryRecord) -> Void
    /// Base of the retry backoff (tests shorten it).
    private let retryBase: Duration
    /// When a delivery finished (the vault's finished_at).
    private let clock: MonitorClock

    public init(sinks: [AlertSinkSettings], logger: Logger, retryBase: Duration = .seconds(1), clock: MonitorClock = .system,
                onDelivery: @escaping @Sendable (AlertDeliveryRecord) -> Void) {
        self.logger = logger
        self.clock = clock
        self.onDelivery = onDelivery
        self.retryBase = retryBase
        self.lanes = sinks.map { settings in
            let sink: any AlertSink = switch settings.kind {
            case .command: CommandSink(name: settings.name, argv: settings.command)
            case .webhook: WebhookSink(name: settings.name, url: URL(string: settings.url ?? "")!, headers: settings.headers)
            }
            let (stream, continuation) = AsyncStream<Alert>.makeStream(bufferingPolicy: .bufferingNewest(settings.queueCapacity))
            return Lane(sink: sink, settings: settings, stream: stream, continuation: continuation)
        }
    }

    public var sinkNames: [String] { lanes.map(\.settings.name) }

    /// Queues `alert` for every sink. Never blocks.
    public func submit(_ alert: Alert) {
        for lane in lanes {
            if case .dropped(let old) = lane.continuation.yield(alert) {
                logger.error("alert queue full: dropped the oldest alert", metadata: [
                    "sink": "\(lane.settings.name)", "alert.id": "\(old.alertID)", "alert.kind": "\(old.kind.rawValue)",
                ])
                onDelivery(AlertDeliveryRecord(alert: old, sink: lane.settings.name, outcome: .dropped, attempts: 0, error: "queue full", finishedAt: clock.date()))
            }
        }
    }

    public func run() async throws {
        await withTaskGroup(of: Bool.self) { group in
            for lane in lanes {
                group.addTask { await self.deliver(lane); return false }
            }
            // Until the daemon stops (or this task is cancelled)…
            try? await gracefulShutdown()
            // …then take no more alerts and give the queued ones a bounded time to go out.
            for lane in lanes { lane.continuation.finish() }
            group.addTask { try? await Task.sleep(for: .seconds(5)); return true }
            var remaining = lanes.count
            while remaining > 0, let timerFired = await group.next() {
                if timerFired { break }
                remaining -= 1
            }
            group.cancelAll()
        }
    }

    private func deliver(_ lane: Lane) async {
        let timeout = Duration.milliseconds(lane.settings.timeoutMs)
        for await alert in lane.stream {
            let payload = Array(alert.json().utf8) + [10]
            var backoff = Backoff(base: retryBase, cap: .seconds(60))
            var attempts = 0
            var lastError: String?
            var outcome = AlertDeliveryRecord.Outcome.failed
            while attempts <= lane.settings.retries {
                attempts += 1
                let result = await lane.sink.attempt(payload, timeout: timeout)
                if result == .delivered { outcome = .delivered; lastError = nil; break }
                if case .retryable(let e) = result { lastError = e }
                if case .permanent(let e) = result { lastError = e; break }
                guard attempts <= lane.settings.retries, !Task.isCancelled else { break }
                do { try await Task.sleep(for: backoff.nextDelay()) } catch { break }
            }
            let delivery = AlertDeliveryRecord(alert: alert, sink: lane.settings.name, outcome: outcome, attempts: attempts, error: lastError, finishedAt: clock.date())
            if outcome == .delivered {
                logger.info("alert delivered", metadata: ["sink": "\(lane.settings.name)", "alert.id": "\(alert.alertID)", "alert.kind": "\(alert.kind.rawValue)", "attempts": "\(attempts)"])
            } else {
                logger.error("alert delivery failed", metadata: [
                    "sink": "\(lane.settings.name)", "alert.id": "\(alert.alertID)", "alert.kind": "\(alert.kind.rawValue)",
                    "attempts": "\(attempts)", "error": "\(lastError ?? "")",
                ])
            }
            onDelivery(delivery)
        }
    }
}
