import Foundation
import LockvaultCore

/// The one place a cycle meets its document: the rows this process built are encoded whole or
/// cut down to what changed, as the state machine planned; a document from the spool is sent as
/// it was (the spool keeps whole documents: after a restart nothing is known of what the vault
/// holds). The gap is the state machine's too (the cycle's own outage, widened over lost ones);
/// a cycle is built without one.
extension PendingCycle where Rows == CycleRecord, Key == VaultRowKey {
    /// The document record_cycle writes for `plan`, carrying `gap`.
    func document(_ plan: VaultChanges<VaultRowKey>.Plan, carrying gap: ObservationGap?) throws -> String {
        switch content {
        case .built(let record, _):
            if case .changes(let send, let end) = plan { return try record.changes(send: send, end: end).document(carrying: gap) }
            return try record.document(carrying: gap)
        case .spooled(let text):
            guard let gap else { return text }
            guard var object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw SpoolError(code: .unencodable, path: "", reason: "the spooled cycle document is not a JSON object")
            }
            object["gap"] = try Self.gapObject(gap)
            return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
        }
    }

    /// The whole document without a gap: what the spool keeps.
    func wholeDocument() throws -> String {
        try document(.all, carrying: nil)
    }

    /// The `gap` object exactly as ``CycleRecord`` writes it (one place decides its keys):
    /// taken from an empty record carrying it.
    private static func gapObject(_ gap: ObservationGap) throws -> Any {
        let carrier = CycleRecord(snapshot: LockSnapshot(capturedAt: gap.end), context: RecordContext(clusterName: "", recordSource: ""))
        guard let object = try JSONSerialization.jsonObject(with: Data(try carrier.document(carrying: gap).utf8)) as? [String: Any],
              let gapObject = object["gap"] else {
            throw SpoolError(code: .unencodable, path: "", reason: "the cycle document has no gap object")
        }
        return gapObject
    }
}

extension CycleRecord {
    /// The document for this record carrying `gap`.
    func document(carrying gap: ObservationGap?) throws -> String {
        guard let gap else { return try encoded() }
        var record = self
        record.gap = GapRow(start: gap.start, end: gap.end, reason: gap.reason)
        return try record.encoded()
    }
}
