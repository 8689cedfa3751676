import Foundation
import Testing
@testable import LockvaultCore

/// The spool's decisions, driven like the Monitor drives them: after each cycle the adapter
/// asks ``VaultSpool/next(for:)`` until nil and reports what it did.
@Suite struct VaultSpoolTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    /// Runs the adapter's loop with files that always write (`fail` makes writes fail);
    /// returns the actions taken.
    @discardableResult
    static func sync(_ spool: inout VaultSpool, _ buffer: VaultBuffer<String>, bytes: Int = 100, fail: Bool = false) -> [VaultSpool.Action] {
        var done: [VaultSpool.Action] = []
        for _ in 0...(buffer.count + spool.stored.count) {
            guard let action = spool.next(for: buffer) else { break }
            done.append(action)
            switch action {
            case .remove(let s): spool.removed(sequence: s)
            case .store(let s):
                guard spool.admit(sequence: s, bytes: bytes) else { return done }
                if fail { spool.storeFailed(sequence: s, reason: "EROFS"); return done }
                spool.stored(sequence: s, lost: buffer.records.first { $0.sequence == s }?.lost, bytes: bytes)
            }
        }
        return done
    }

    @Test func bufferedRecordsAreSpooledInOrderAndRemovedOnceWritten() {
        var buffer = VaultBuffer<String>(limit: 10)
        var spool = VaultSpool(maxBytes: 10_000)
        buffer.append("a", capturedAt: t0, gap: nil)
        buffer.append("b", capturedAt: t0 + 1, gap: nil)
        #expect(Self.sync(&spool, buffer) == [.store(sequence: 1), .store(sequence: 2)])
        #expect(Self.sync(&spool, buffer).isEmpty, "nothing more to do")
        buffer.headWritten()
        #expect(Self.sync(&spool, buffer) == [.remove(sequence: 1)])
        buffer.headWritten()
        #expect(Self.sync(&spool, buffer) == [.remove(sequence: 2)])
        #expect(spool.stored.isEmpty && spool.totalBytes == 0)
    }

    @Test func droppedRecordsLeaveTheSpoolAndTheNewHeadIsRewrittenWithItsGap() throws {
        var buffer = VaultBuffer<String>(limit: 2)
        var spool = VaultSpool(maxBytes: 10_000)
        for i in 0..<2 { buffer.append("r\(i)", capturedAt: t0 + Double(i), gap: nil) }
        Self.sync(&spool, buffer)
        buffer.append("r2", capturedAt: t0 + 2, gap: nil)   // drops r0; r1 now carries the gap
        let actions = Self.sync(&spool, buffer)
        #expect(actions == [.remove(sequence: 1), .store(sequence: 2), .store(sequence: 3)])
        #expect(try #require(spool.stored[2]).lost?.dropped == 1, "the head's file carries the lost record")
    }

    @Test func aFullSpoolStaysContiguousUntilTheBufferDrains() {
        var buffer = VaultBuffer<String>(limit: 10)
        var spool = VaultSpool(maxBytes: 250)
        for i in 0..<4 { buffer.append("r\(i)", capturedAt: t0 + Double(i), gap: nil) }
        Self.sync(&spool, buffer)
        #expect(spool.stored.keys.sorted() == [1, 2], "two files fit")
        #expect(spool.suspended?.contains("full") == true)
        buffer.headWritten()   // room again, but r3 must not be spooled after a hole at r2's successor
        Self.sync(&spool, buffer)
        #expect(spool.stored.keys.sorted() == [2], "no hole: r3 and r4 stay memory-only")
        while !buffer.isEmpty { buffer.headWritten() }
        Self.sync(&spool, buffer)
        #expect(spool.suspended == nil, "an empty buffer ends the suspension")
        buffer.append("r5", capturedAt: t0 + 5, gap: nil)
        #expect(Self.sync(&spool, buffer) == [.store(sequence: 5)])
    }

    @Test func anUnwritableSpoolIsReportedOnceAndNeverRetriedEveryCycle() {
        var buffer = VaultBuffer<String>(limit: 10)
        var spool = VaultSpool(maxBytes: 10_000)
        buffer.append("a", capturedAt: t0, gap: nil)
        let first = spool.storeFailed(sequence: 1, reason: "EACCES")
        let again = spool.storeFailed(sequence: 1, reason: "EACCES")
        #expect(first, "the first failure is news")
        #expect(!again)
        buffer.append("b", capturedAt: t0 + 1, gap: nil)
        #expect(Self.sync(&spool, buffer).isEmpty, "suspended: nothing is tried until the buffer drains")
    }

    @Test func restoredRecordsComeFirstAndKeepTheirOrder() {
        var buffer = VaultBuffer<String>(limit: 10)
        let spooled = [PendingRecord(record: "old2", capturedAt: t0 + 2, gap: nil, lost: nil, sequence: 8),
                       PendingRecord(record: "old1", capturedAt: t0 + 1, gap: CycleGap(start: t0, end: t0 + 1, reason: "target unavailable"), lost: nil, sequence: 7)]
        buffer.restore(spooled)
        buffer.append("new", capturedAt: t0 + 10, gap: nil)
        #expect(buffer.records.map(\.record) == ["old1", "old2", "new"])
        #expect(buffer.records.map(\.sequence) == [7, 8, 9], "numbering continues after the spool's")
        #expect(buffer.head?.gapToWrite?.reason == "target unavailable")
    }

    @Test func spoolFileMetadataRoundTrips() throws {
        var lost = LostStretch([PendingRecord(record: "x", capturedAt: t0, gap: nil, lost: nil, sequence: 1)], start: t0)
        lost.dropped = 3
        lost.bufferLimit = 3
        let decoded = try JSONDecoder().decode(LostStretch.self, from: JSONEncoder().encode(lost))
        #expect(decoded == lost)
    }
}
