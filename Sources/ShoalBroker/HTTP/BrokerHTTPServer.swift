import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import ServiceLifecycle
import ShoalAPI

/// The broker's HTTP/JSON API as a service: run it in the daemon's `ServiceGroup`.
///
/// Reads are open (the API listens on loopback by default); every change needs the bearer token.
/// With `tls` it speaks HTTPS only: what `shoal broker` requires beyond loopback, so the token
/// never crosses a network in clear.
public struct BrokerHTTPServer: Service {
    private let application: any Service

    /// - Parameters:
    ///   - port: 0 picks any free port; `onListening` says which.
    ///   - onListening: Called once with the bound port, when the server accepts connections —
    ///     the moment to print the ready line.
    public init(
        operations: some BrokerOperations,
        token: String,
        host: String = BrokerAPI.defaultHost,
        port: Int = BrokerAPI.defaultPort,
        tls: TLSConfiguration? = nil,
        logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws {
        application = try Self.makeApplication(
            operations: operations, token: token, host: host, port: port, tls: tls, logger: logger, onListening: onListening
        )
    }

    public func run() async throws {
        try await application.run()
    }

    /// The Hummingbird application behind the server, for callers (and tests) that want it whole.
    public static func makeApplication(
        operations: some BrokerOperations,
        token: String,
        host: String = BrokerAPI.defaultHost,
        port: Int = BrokerAPI.defaultPort,
        tls: TLSConfiguration? = nil,
        logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let router = Router()
        MetricsRoutes(operations: operations).add(to: router)  // First: its middleware times every route.
        // Middleware applies only to routes added after it, and to the not-found answer.
        router.add(middleware: RequestLogMiddleware())
        router.add(middleware: ErrorBodyMiddleware())
        router.add(middleware: BearerTokenMiddleware(token: token))
        BrokerRoutes(operations: operations).add(to: router)
        StatusPageRoutes(operations: operations).add(to: router)

        return Application(
            router: router,
            server: try tls.map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1(),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port)),
            onServerRunning: { channel in
                if let port = channel.localAddress?.port {
                    await onListening(port)
                }
            },
            logger: logger
        )
    }
}
