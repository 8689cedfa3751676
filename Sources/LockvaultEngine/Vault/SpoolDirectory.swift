import Foundation
import LockvaultCore
import PostgresClient

struct SpoolError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// The spool's files (the I/O half of ``VaultSpool``, whose steps ``VaultStateMachine`` hands
/// to ``VaultWriter``): one file per buffered cycle,
/// `cycle-<sequence>.json`, written to a temporary name, fsync'd, renamed, and the directory
/// fsync'd, so a file is either complete or absent after a crash; removed (and the directory
/// fsync'd) as soon as the vault has the record.
final class SpoolDirectory {
    let path: String

    /// One file's content.
    struct SpoolFile: Codable {
        var version = 1
        var sequence: UInt64
        var capturedAt: Date
        var gap: ObservationGap?
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
    func load() -> (cycles: [PendingCycle<CycleRecord, VaultRowKey>], files: [UInt64: VaultSpool.Entry], unreadable: [String]) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return ([], [:], []) }
        var records: [PendingCycle<CycleRecord, VaultRowKey>] = []
        var entries: [UInt64: VaultSpool.Entry] = [:]
        var unreadable: [String] = []
        for name in names.sorted() where name.hasPrefix("cycle-") && name.hasSuffix(".json") {
            let file = "\(path)/\(name)"
            guard let data = FileManager.default.contents(atPath: file),
                  let cycle = try? JSONDecoder().decode(SpoolFile.self, from: data), cycle.version == 1 else {
                unreadable.append(name)
                _ = rename(file, file + ".unreadable")
                continue
            }
            records.append(PendingCycle(content: .spooled(document: cycle.document), capturedAt: cycle.capturedAt, gap: cycle.gap,
                                        lost: cycle.lost, sequence: cycle.sequence))
            entries[cycle.sequence] = VaultSpool.Entry(lost: cycle.lost, bytes: data.count)
        }
        return (records.sorted { $0.sequence < $1.sequence }, entries, unreadable)
    }

    /// The file content for a buffered record.
    func encode(_ pending: PendingCycle<CycleRecord, VaultRowKey>) throws -> Data {
        let text: String
        do { text = try pending.wholeDocument() } catch { throw SpoolError(message: "the record could not be encoded: \(error)") }
        return try JSONEncoder().encode(SpoolFile(sequence: pending.sequence, capturedAt: pending.capturedAt, gap: pending.gap,
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
