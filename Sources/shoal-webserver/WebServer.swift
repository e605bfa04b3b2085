import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1
import NIOPosix

/// The paper's test service: a plain HTTP/1.1 server whose response size, processing delay and
/// CPU work per request are set on the command line and can be overridden per request
/// (`/doc?size=1024&delay_ms=10&cpu_ms=0`). A concurrency limit makes one instance behave like
/// one small machine: requests beyond it wait their turn.
@main
struct WebServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shoal-webserver",
        abstract: "The paper's sample web server: sized documents, delay and CPU work per request."
    )

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port; the chosen one is printed).") var port = 8080
    @Option(help: "Default document size in bytes.") var size = 1024
    @Option(name: .customLong("delay-ms"), help: "Default processing delay per request, in ms.") var delayMs = 0
    @Option(name: .customLong("cpu-ms"), help: "Default CPU work per request, in ms.") var cpuMs = 0
    @Option(help: "Requests processed at once; more wait in line.") var concurrency = 64

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard (0...DocumentRequest.maxSize).contains(size) else {
            throw ValidationError("--size must be 0...\(DocumentRequest.maxSize)")
        }
        guard delayMs >= 0, cpuMs >= 0 else { throw ValidationError("--delay-ms and --cpu-ms must be >= 0") }
        guard (1...4096).contains(concurrency) else { throw ValidationError("--concurrency must be 1...4096") }
    }

    func run() async throws {
        let defaults = DocumentRequest(size: size, delayMs: delayMs, cpuMs: cpuMs)
        let gate = ConcurrencyGate(limit: concurrency)
        // CPU work runs here, never on an event loop; as many threads as requests may run at once.
        let cpuPool = NIOThreadPool(numberOfThreads: min(concurrency, 64))
        cpuPool.start()
        let group = MultiThreadedEventLoopGroup.singleton

        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        DocumentHandler(defaults: defaults, gate: gate, cpuPool: cpuPool))
                }
            }
            .bind(host: host, port: port).get()

        print("shoal-webserver listening on \(host):\(channel.localAddress?.port ?? port)"
            + " size=\(size) delay_ms=\(delayMs) cpu_ms=\(cpuMs) concurrency=\(concurrency)")
        fflush(nil)  // A parent reads the port from this line: flush every stream (naming stdout is not Sendable).
        try await channel.closeFuture.get()
        try await cpuPool.shutdownGracefully()
    }
}
