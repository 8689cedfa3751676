import Foundation

/// A real AF_UNIX datagram socket standing in for systemd's notification socket: lets tests
/// watch exactly what lockvault tells systemd.
///
/// A reader thread drains the socket continuously, like systemd does: a notification socket
/// nobody reads fills up, and then the sender's `sd_notify` blocks.
public final class NotifySocketListener: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    private let condition = NSCondition()
    private var queue: [String] = []
    private var closed = false

    public init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("lv-notify-\(UUID().uuidString.prefix(8)).sock").path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0 else { close(fd); throw POSIXError(.EADDRINUSE) }
        let thread = Thread { [self] in self.readLoop() }
        thread.start()
    }

    deinit {
        condition.lock()
        closed = true
        condition.unlock()
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        unlink(path)
    }

    private func readLoop() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 100)
            condition.lock()
            let stop = closed
            condition.unlock()
            if stop { return }
            guard ready > 0 else { continue }
            let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            guard n > 0 else { continue }
            condition.lock()
            queue.append(String(decoding: buffer[0..<n], as: UTF8.self))
            condition.signal()
            condition.unlock()
        }
    }

    /// The next notification, or nil when none arrives before the deadline.
    public func receive(timeout: Duration) -> String? {
        let deadline = Date().addingTimeInterval(Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18)
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty {
            if !condition.wait(until: deadline) { break }
        }
        return queue.isEmpty ? nil : queue.removeFirst()
    }
}
