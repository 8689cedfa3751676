import Foundation
public import LockvaultCore

/// Reads what the server appended to its log since the last call, and finds deadlock reports.
///
/// Starts at the end of the file (history before lockvault started is not replayed), follows
/// rotation (a different inode or a shorter file starts over from the beginning of the new
/// file), and never reads more than `maxBytesPerRead` per call so a huge log can't stall a
/// cycle. An unreadable log is reported once per change of error, not every cycle.
public final class ServerLogTailer {
    public let path: String
    private var parser: ServerLogDeadlockParser
    private var offset: UInt64?
    private var inode: UInt64?
    public private(set) var lastError: String?
    public let maxBytesPerRead: Int

    public init(path: String, format: ServerLogFormat, linePrefix: String = LogLinePrefix.debianDefault, maxBytesPerRead: Int = 4 << 20) {
        self.path = path
        self.parser = ServerLogDeadlockParser(format: format, linePrefix: linePrefix)
        self.maxBytesPerRead = maxBytesPerRead
    }

    public var format: ServerLogFormat { parser.format }
    public var linePrefix: String { parser.linePrefix.prefix }

    /// Reads stderr lines with the server's `log_line_prefix` from now on (a reload may
    /// change it). An entry half read when it changes is dropped.
    public func use(linePrefix: String) {
        guard linePrefix != parser.linePrefix.prefix else { return }
        parser = ServerLogDeadlockParser(format: parser.format, linePrefix: linePrefix)
    }

    /// New deadlock reports since the previous call.
    public func poll() -> [DeadlockReport] {
        var st = stat()
        guard stat(path, &st) == 0 else {
            lastError = "cannot stat \(path): \(String(cString: strerror(errno)))"
            return []
        }
        let size = UInt64(st.st_size)
        let ino = UInt64(st.st_ino)
        if offset == nil { offset = size; inode = ino; return [] }
        if ino != inode || size < offset! { offset = 0; inode = ino }
        guard size > offset! else { return parser.flush() }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            lastError = "cannot open \(path) for reading"
            return []
        }
        defer { try? handle.close() }
        do {
            try handle.seek(toOffset: offset!)
            let data = try handle.read(upToCount: maxBytesPerRead) ?? Data()
            offset! += UInt64(data.count)
            lastError = nil
            return parser.feed(String(decoding: data, as: UTF8.self)) + (data.count < maxBytesPerRead ? parser.flush() : [])
        } catch {
            lastError = "cannot read \(path): \(error)"
            return []
        }
    }
}
