public import Foundation

/// When the daemon creates the vault's history partitions ahead
/// (`lock_monitoring.ensure_history_partitions`, sql/functions/history_partitions.sql): at its
/// first cycle and then hourly, `daysAhead` days ahead. Many daemons writing into one vault all
/// do it; creating is idempotent, and a write for a day without a partition lands in the
/// default partition, so nothing depends on any one daemon doing it on time.
public enum PartitionSchedule {
    public static let interval: TimeInterval = 3600
    public static let daysAhead = 7

    public static func isDue(lastRun: Date?, now: Date) -> Bool {
        guard let lastRun else { return true }
        return now.timeIntervalSince(lastRun) >= interval || now < lastRun
    }
}
