public import LockvaultCore

/// What the Monitor asks, once per sampled cycle and before it records the cycle, of whoever
/// raises alerts: which alerts this cycle raises, and which deliveries finished since the last
/// one. Asking before the record is built puts the alert trail into the cycle's own document,
/// so it takes the cycles' one write path (buffered, spooled, replayed exactly once).
///
/// Called on the Monitor's thread: it must not block. It only decides: handing the alerts to
/// the sinks is the caller's, once the cycle is done.
public protocol CycleAlerting: Sendable {
    func alerts(for outcome: CycleOutcome) -> (raised: [Alert], deliveries: [AlertDeliveryRecord])
}
