import Foundation
import LockvaultCore
import PostgresClient

/// Why a cycle could not be spooled or a spooled one removed: what was done, to which path
/// (the operator's own configured directory), and the system's reason (strerror), never the
/// record's contents, which carry query texts.
struct SpoolError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong, extensible without breaking a `switch` (postgres-nio's PSQLError style).
    struct Code: Hashable, Sendable, CustomStringConvertible {
        private let raw: String
        private init(_ raw: String) { self.raw = raw }
        /// The cycle could not be encoded as its document.
        static let unencodable = Code("unencodable")
        /// The spool's path exists and is not a directory.
        static let notADirectory = Code("notADirectory")
        /// The directory or a file could not be created or opened.
        static let cannotCreate = Code("cannotCreate")
        /// A file could not be written, fsync'd or renamed into place.
        static let cannotWrite = Code("cannotWrite")
        /// A replayed cycle's file could not be removed.
        static let cannotRemove = Code("cannotRemove")
        /// The directory could not be fsync'd.
        static let cannotSync = Code("cannotSync")
        var description: String { raw }
    }

    var code: Code
    /// The file or directory concerned ("" when none is).
    var path: String
    /// The system's reason (strerror), or what failed to encode (a type name).
    var reason: String

    var description: String {
        let what: String = switch code {
        case .unencodable: "the record could not be encoded"
        case .notADirectory: "\(path) is not a directory"
        case .cannotCreate: "cannot create \(path)"
        case .cannotWrite: "cannot write \(path)"
        case .cannotRemove: "cannot remove \(path)"
        case .cannotSync: "cannot fsync \(path)"
        default: "spool failure (\(code)) at \(path)"
        }
        return reason.isEmpty ? what : "\(what): \(reason)"
    }
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
        do { text = try pending.wholeDocument() } catch { throw SpoolError(code: .unencodable, path: "", reason: "\(type(of: error))") }
        return try JSONEncoder().encode(SpoolFile(sequence: pending.sequence, capturedAt: pending.capturedAt, gap: pending.gap,
                                                     lost: pending.lost, document: text))
    }

    /// Writes `data` as the file of `sequence`, durably.
    func write(_ data: Data, sequence: UInt64) throws {
        try makeDirectory()
        let final = "\(path)/\(fileName(sequence))"
        let temporary = "\(path)/.\(fileName(sequence)).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure(.cannotCreate, temporary) }
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
            throw SpoolError(code: .cannotWrite, path: temporary, reason: String(cString: strerror(e)))
        }
        close(fd)
        guard rename(temporary, final) == 0 else {
            let e = failure(.cannotWrite, final)
            unlink(temporary)
            throw e
        }
        try syncDirectory()
    }

    /// Removes the file of `sequence`, durably.
    func remove(sequence: UInt64) throws {
        let file = "\(path)/\(fileName(sequence))"
        guard unlink(file) == 0 || errno == ENOENT else { throw failure(.cannotRemove, file) }
        try syncDirectory()
    }

    private func makeDirectory() throws {
        var st = stat()
        if stat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw SpoolError(code: .notADirectory, path: path, reason: "") }
            return
        }
        // mkdir -p, one component at a time, so a failure carries the system's own reason
        // (Foundation's error names neither it nor the errno on every platform).
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST { throw failure(.cannotCreate, path) }
        }
    }

    private func syncDirectory() throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw failure(.cannotSync, path) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw failure(.cannotSync, path) }
    }

    /// The failure of `code` at `path`, with errno's reason (read at once, before anything resets it).
    private func failure(_ code: SpoolError.Code, _ path: String) -> SpoolError {
        SpoolError(code: code, path: path, reason: String(cString: strerror(errno)))
    }
}
