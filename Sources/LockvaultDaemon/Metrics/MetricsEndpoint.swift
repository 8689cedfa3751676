import Hummingbird
import Synchronization
import Logging
import NIOCore

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

/// `GET /metrics` (the Prometheus text exposition) and `GET /` on Hummingbird.
///
/// ``start()`` binds before it returns, so a busy port is a start-up error (exit 69), not a
/// silent background failure; serving goes on in a task of its own until ``stop()``.
public final class MetricsEndpoint: Sendable {
    private let address: ListenAddress
    private let render: @Sendable () -> [UInt8]
    private let serving = Mutex<Task<Void, Never>?>(nil)

    public init(address: ListenAddress, render: @escaping @Sendable () -> [UInt8]) {
        self.address = address
        self.render = render
    }

    /// Binds and starts serving; returns the bound port (the kernel's pick for port 0).
    @discardableResult
    public func start() async throws(MetricsServerError) -> UInt16 {
        let render = self.render
        let router = Router()
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: render())))
        }
        router.get("/") { _, _ in "lockvault: metrics at /metrics\n" }
        var logger = Logger(label: "lockvault.metrics")
        logger.logLevel = .warning
        let (bound, report) = AsyncStream<Result<UInt16, any Error>>.makeStream()
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(address.host, port: Int(address.port)), serverName: nil),
            onServerRunning: { channel in report.yield(.success(UInt16(channel.localAddress?.port ?? 0))) },
            logger: logger)
        let task = Task {
            do { try await app.run() } catch { report.yield(.failure(error)) }
            report.finish()
        }
        serving.withLock { $0 = task }
        for await outcome in bound {
            switch outcome {
            case .success(let port): return port
            case .failure(let error):
                throw MetricsServerError(description: "metrics.listen \(address): cannot listen (\(error))")
            }
        }
        throw MetricsServerError(description: "metrics.listen \(address): the server stopped before it listened")
    }

    /// Stops serving (the task ends once open requests are answered).
    public func stop() {
        serving.withLock { $0?.cancel(); $0 = nil }
    }
}
