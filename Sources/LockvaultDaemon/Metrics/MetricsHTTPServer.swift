import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `host:port` for a listening socket: `127.0.0.1:9187`, `[::1]:9187`, `localhost:9187`; a bare
/// port (`9187`) means loopback (`127.0.0.1`): exposing the endpoint further must be explicit.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    /// Port 0 is accepted (the kernel picks one; tests use it).
    public init?(_ text: String) {
        let host: Substring, port: Substring
        if !text.isEmpty, text.allSatisfy(\.isNumber) {
            host = "127.0.0.1"
            port = Substring(text)
        } else if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2 else { return nil }
            host = parts[0]
            port = parts[1]
        }
        guard !host.isEmpty, let p = UInt16(port) else { return nil }
        self.host = String(host)
        self.port = p
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Why the metrics endpoint could not start.
public struct MetricsServerError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// A deliberately small HTTP/1.1 server for `GET /metrics`: one connection at a time, on a
/// thread of its own, 2 s socket timeouts, `Connection: close`.
///
/// A scrape endpoint needs nothing more, and this keeps an HTTP framework (and its event loops)
/// out of a daemon whose job is to stay small. Binding happens in ``start()`` so a busy port is
/// a startup error, not a silent background failure.
public final class MetricsHTTPServer: Sendable {
    private let address: ListenAddress
    private let render: @Sendable () -> [UInt8]
    private let state = Mutex<(fd: Int32, stopping: Bool)>((-1, false))

    public init(address: ListenAddress, render: @escaping @Sendable () -> [UInt8]) {
        self.address = address
        self.render = render
    }

    /// Binds and starts serving; returns the bound port.
    @discardableResult
    public func start() throws(MetricsServerError) -> UInt16 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var info: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(address.host, String(address.port), &hints, &info)
        guard rc == 0, let first = info else {
            throw MetricsServerError(description: "metrics.listen \(address): cannot resolve host (\(String(cString: gai_strerror(rc))))")
        }
        defer { freeaddrinfo(info) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { throw MetricsServerError(description: "metrics.listen \(address): socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        guard bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0, listen(fd, 16) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw MetricsServerError(description: "metrics.listen \(address): cannot listen (\(message))")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let port = withUnsafeMutablePointer(to: &storage) { p in
            _ = p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            return p.pointee.ss_family == sa_family_t(AF_INET6)
                ? p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
                : p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
        state.withLock { $0.fd = fd }
        let thread = Thread { [self] in self.serve(fd) }
        thread.name = "lockvault-metrics"
        thread.start()
        return port
    }

    /// Stops accepting and closes the socket (within ~200 ms).
    public func stop() {
        state.withLock { $0.stopping = true }
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        while !state.withLock({ $0.stopping }) {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 200) > 0 else { continue }
            let client = accept(fd, nil, nil)
            guard client >= 0 else { continue }
            handle(client)
            close(client)
        }
    }

    private func handle(_ fd: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 2048)
        while request.count < 16_384 {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            request.append(contentsOf: chunk[0..<n])
            if String(decoding: request, as: UTF8.self).contains("\r\n\r\n") { break }   // end of the headers
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self).split(separator: " ")
        let (status, type, body): (String, String, [UInt8])
        if line.count < 2 {
            (status, type, body) = ("400 Bad Request", "text/plain", Array("bad request\n".utf8))
        } else if line[0] != "GET" && line[0] != "HEAD" {
            (status, type, body) = ("405 Method Not Allowed", "text/plain", Array("only GET\n".utf8))
        } else if line[1] == "/metrics" || line[1].hasPrefix("/metrics?") {
            (status, type, body) = ("200 OK", "text/plain; version=0.0.4; charset=utf-8", render())
        } else if line[1] == "/" {
            (status, type, body) = ("200 OK", "text/plain", Array("lockvault: metrics at /metrics\n".utf8))
        } else {
            (status, type, body) = ("404 Not Found", "text/plain", Array("not found; metrics are at /metrics\n".utf8))
        }
        var response = Array("HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8)
        if line.first != "HEAD" { response += body }
        var sent = 0
        while sent < response.count {
            let n = response[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return }
            sent += n
        }
    }
}
