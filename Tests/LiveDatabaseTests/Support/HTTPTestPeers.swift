import AsyncHTTPClient
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A webhook receiver on 127.0.0.1 for tests (Hummingbird): records every POST body and answers
/// as told — 200, a given status, or never (the request is held until ``stop()``).
final class WebhookReceiver: Sendable {
    enum Behaviour: Sendable { case ok, status(Int), hang }

    struct NotListening: Error, CustomStringConvertible { var description: String }

    /// The bodies received, shared with the route's handler.
    private final class Inbox: Sendable { let bodies = Mutex<[String]>([]) }

    let port: UInt16
    private let inbox: Inbox
    private let serving: Task<Void, Never>

    /// Returns once the server listens (on a port the kernel picks).
    init(_ behaviour: Behaviour) async throws {
        let inbox = Inbox()
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            inbox.bodies.withLock { $0.append(String(buffer: body)) }
            switch behaviour {
            case .ok: return Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: "ok")))
            case .status(let code): return Response(status: .init(code: code), body: ResponseBody(byteBuffer: ByteBuffer(string: "no")))
            case .hang:
                // Never answers: the request ends when stop() cancels the server, and this wait with it.
                try await Task.sleep(for: .seconds(24 * 3600))
                throw CancellationError()
            }
        }
        var logger = Logger(label: "test.webhook-receiver")
        logger.logLevel = .warning
        let (bound, report) = AsyncStream<Result<UInt16, any Error>>.makeStream()
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: nil),
            onServerRunning: { channel in report.yield(.success(UInt16(channel.localAddress?.port ?? 0))) },
            logger: logger)
        let serving = Task {
            do { try await app.run() } catch { report.yield(.failure(error)) }
            report.finish()
        }
        var port: UInt16?
        for await outcome in bound {
            if case .success(let p) = outcome { port = p }
            break
        }
        guard let port, port != 0 else {
            serving.cancel()
            throw NotListening(description: "the webhook receiver did not start listening")
        }
        self.port = port
        self.inbox = inbox
        self.serving = serving
    }

    var bodies: [String] { inbox.bodies.withLock { $0 } }
    var url: String { "http://127.0.0.1:\(port)/hook" }

    /// Stops the server; requests still open (``Behaviour/hang``) are cancelled.
    func stop() { serving.cancel() }

    deinit { stop() }
}

/// The tests' HTTP client side, over async-http-client.
enum LoopbackHTTP {
    /// GET http://127.0.0.1:port/path → (status code, body).
    static func get(port: UInt16, path: String) async throws -> (Int, String) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"), timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 16 << 20)
        return (Int(response.status.code), String(buffer: body))
    }

    /// A loopback port that was free a moment ago (for configs that need one up front).
    static func freePort() async throws -> UInt16 {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port
        try await channel.close()
        guard let port else { throw WebhookReceiver.NotListening(description: "no local port for a bound loopback socket") }
        return UInt16(port)
    }
}
