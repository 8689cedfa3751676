import Foundation
import LockvaultCore
import Logging
import PostgresClient

/// A cycle record as the vault takes it. A cycle of this process keeps its rows, so that only
/// what changed since the last write is encoded and sent (``VaultChanges`` decides, at write
/// time); one replayed from the spool is the whole document's text (the spool keeps whole
/// documents: after a restart nothing is known of what the vault holds). The gap is decided by
/// the state machine at write time.
struct CycleDocument: Sendable {
    /// The cycle's rows (nil for a record replayed from the spool).
    var record: CycleRecord?
    /// The whole document, for a record replayed from the spool.
    var text: String?
    /// The generation of the record's lock rows in the monitor's ``LockRowMemo``, if they came from it.
    var lockRowsGeneration: UInt64?

    init(_ record: CycleRecord) {
        self.record = record
    }

    init(text: String) {
        self.text = text
    }

    /// The whole document (what the spool keeps), without a gap.
    func wholeText() throws -> String {
        if let text { return text }
        guard let record else { throw SpoolError(message: "the cycle record is empty") }
        return try record.document(carrying: nil)
    }

    /// The document for `plan` (whole, or only the changes), carrying `gap`.
    func document(_ plan: VaultChanges<VaultRowKey>.Plan, carrying gap: CycleGap?) throws -> String {
        if let record {
            if case .changes(let send, let end) = plan { return try record.changes(send: send, end: end).document(carrying: gap) }
            return try record.document(carrying: gap)
        }
        return try carrying(gap)
    }

    /// The whole document carrying `gap` (record_cycle's `gap` object).
    func carrying(_ gap: CycleGap?) throws -> String {
        if let record { return try record.document(carrying: gap) }
        guard let text else { throw SpoolError(message: "the cycle record is empty") }
        guard let gap else { return text }
        guard var object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw SpoolError(message: "the cycle document is not a JSON object")
        }
        object["gap"] = try Self.gapObject(gap)
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    /// The `gap` object exactly as ``CycleRecord`` writes it (one place decides its keys):
    /// taken from an empty record carrying it.
    static func gapObject(_ gap: CycleGap) throws -> Any {
        let snapshot = LockSnapshot(capturedAt: gap.end)
        let carrier = CycleRecord(snapshot: snapshot, assessments: [], graph: WaitGraph(snapshot), deadlocks: [], decisions: [],
                                  killRule: [], killThresholdSeconds: 0, clusterName: "", recordSource: "", cycleMilliseconds: 0, heartbeatSeconds: 0, gap: nil)
        let text = try carrier.document(carrying: gap)
        guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], let gapObject = object["gap"] else {
            throw SpoolError(message: "the cycle document has no gap object")
        }
        return gapObject
    }
}

struct SpoolError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// The spool's files (the I/O half of ``VaultSpool``): one file per buffered cycle record,
/// `cycle-<sequence>.json`, written to a temporary name, fsync'd, renamed, and the directory
/// fsync'd, so a file is either complete or absent after a crash; removed (and the directory
/// fsync'd) as soon as the vault has the record.
final class CycleSpoolDirectory {
    let path: String

    /// One file's content.
    struct SpooledCycle: Codable {
        var version = 1
        var sequence: UInt64
        var capturedAt: Date
        var gap: CycleGap?
        var lost: LostStretch?
        var document: String
    }

    init(path: String) {
        self.path = path
    }

    func fileName(_ sequence: UInt64) -> String {
        let digits = String(sequence)
        return "cycle-" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".json"
    }

    /// The records spooled before this process started, oldest first, and the files that
    /// could not be read (renamed to `*.unreadable`, so they are neither lost nor retried).
    func load() -> (records: [PendingRecord<CycleDocument>], entries: [UInt64: VaultSpool.Entry], unreadable: [String]) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return ([], [:], []) }
        var records: [PendingRecord<CycleDocument>] = []
        var entries: [UInt64: VaultSpool.Entry] = [:]
        var unreadable: [String] = []
        for name in names.sorted() where name.hasPrefix("cycle-") && name.hasSuffix(".json") {
            let file = "\(path)/\(name)"
            guard let data = FileManager.default.contents(atPath: file),
                  let cycle = try? JSONDecoder().decode(SpooledCycle.self, from: data), cycle.version == 1 else {
                unreadable.append(name)
                _ = rename(file, file + ".unreadable")
                continue
            }
            records.append(PendingRecord(record: CycleDocument(text: cycle.document), capturedAt: cycle.capturedAt, gap: cycle.gap, lost: cycle.lost,
                                         sequence: cycle.sequence))
            entries[cycle.sequence] = VaultSpool.Entry(lost: cycle.lost, bytes: data.count)
        }
        return (records.sorted { $0.sequence < $1.sequence }, entries, unreadable)
    }

    /// The file content for a buffered record.
    func encode(_ pending: PendingRecord<CycleDocument>) throws -> Data {
        let text: String
        do { text = try pending.record.wholeText() } catch { throw SpoolError(message: "the record could not be encoded: \(error)") }
        return try JSONEncoder().encode(SpooledCycle(sequence: pending.sequence, capturedAt: pending.capturedAt, gap: pending.gap,
                                                     lost: pending.lost, document: text))
    }

    /// Writes `data` as the file of `sequence`, durably.
    func write(_ data: Data, sequence: UInt64) throws {
        try makeDirectory()
        let final = "\(path)/\(fileName(sequence))"
        let temporary = "\(path)/.\(fileName(sequence)).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("cannot create \(temporary)") }
        var ok = true
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 { if errno == EINTR { continue }; ok = false; return }
                offset += n
            }
        }
        let error = errno
        if !ok || fsync(fd) != 0 {
            let e = ok ? errno : error
            close(fd)
            unlink(temporary)
            throw SpoolError(message: "cannot write \(temporary): \(String(cString: strerror(e)))")
        }
        close(fd)
        guard rename(temporary, final) == 0 else {
            let e = failure("cannot rename \(temporary)")
            unlink(temporary)
            throw e
        }
        try syncDirectory()
    }

    /// Removes the file of `sequence`, durably.
    func remove(sequence: UInt64) throws {
        let file = "\(path)/\(fileName(sequence))"
        guard unlink(file) == 0 || errno == ENOENT else { throw failure("cannot remove \(file)") }
        try syncDirectory()
    }

    /// Does what `spool` asks until the files match `buffer`, reporting each outcome back;
    /// stops at the first file that can't be written (the ledger then holds back).
    func sync(_ spool: inout VaultSpool, with buffer: VaultBuffer<CycleDocument>, logger: Logger) {
        for _ in 0...(buffer.count + spool.stored.count) {
            guard let action = spool.next(for: buffer) else { return }
            switch action {
            case .remove(let sequence):
                do { try remove(sequence: sequence) } catch {
                    logger.error("could not remove a dropped cycle record from the spool", metadata: ["error": "\(error)"])
                }
                spool.removed(sequence: sequence)
            case .store(let sequence):
                guard let pending = buffer.records.first(where: { $0.sequence == sequence }) else { return }
                do {
                    let data = try encode(pending)
                    guard spool.admit(sequence: sequence, bytes: data.count) else {
                        logger.error("the spool is full: further buffered cycle records are kept in memory only, and lost if lockvault stops before the vault returns", metadata: [
                            "spool": "\(path)", "max_bytes": "\(spool.maxBytes)", "spooled": "\(spool.stored.count)",
                        ])
                        return
                    }
                    try write(data, sequence: sequence)
                    spool.stored(sequence: sequence, lost: pending.lost, bytes: data.count)
                } catch {
                    if spool.storeFailed(sequence: sequence, reason: "\(error)") {
                        logger.error("cannot spool buffered cycle records: they are kept in memory only, and lost if lockvault stops before the vault returns", metadata: [
                            "spool": "\(path)", "error": "\(error)",
                        ])
                    }
                    return
                }
            }
        }
    }

    /// The vault has (or refused) record `sequence`: its file goes now, before the next
    /// record is written.
    func removeWritten(_ sequence: UInt64, from spool: inout VaultSpool, logger: Logger) {
        guard spool.stored[sequence] != nil else { return }
        do {
            try remove(sequence: sequence)
        } catch {
            logger.error("could not remove a written cycle record from the spool", metadata: ["error": "\(error)"])
        }
        spool.removed(sequence: sequence)
    }

    private func makeDirectory() throws {
        var st = stat()
        if stat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw SpoolError(message: "\(path) is not a directory") }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw SpoolError(message: "cannot create \(path): \(error.localizedDescription)")
        }
    }

    private func syncDirectory() throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("cannot open \(path)") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw failure("cannot fsync \(path)") }
    }

    private func failure(_ what: String) -> SpoolError {
        SpoolError(message: "\(what): \(String(cString: strerror(errno)))")
    }
}
