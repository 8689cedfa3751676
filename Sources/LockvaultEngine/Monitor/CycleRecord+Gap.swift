import LockvaultCore

extension CycleRecord {
    /// The document `record_cycle` writes for this record, carrying `gap`: the one place a
    /// gap (the record's own outage, widened over lost records by the state machine) meets
    /// the cycle record. The record itself is built without one.
    func document(carrying gap: CycleGap?) throws -> String {
        guard let gap else { return try encoded() }
        var record = self
        record.gap = GapRow(start: gap.start, end: gap.end, reason: gap.reason)
        return try record.encoded()
    }
}
