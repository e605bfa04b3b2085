import Foundation
import Logging
import ServiceLifecycle
import ShoalCore
import ShoalProcess

/// One running instance of a service: the manifest's unmodified binary, started directly (no
/// shell) on a free port and ready once its health check answers 2xx. The front-end runs one
/// locally; a worker runs one on its back-end.
public final class ServiceInstance: Service {
    public let manifest: ServiceManifest
    public let host: String
    public let port: Int
    private let process: ChildProcess
    private let logger: Logger

    private init(manifest: ServiceManifest, host: String, port: Int, process: ChildProcess, logger: Logger) {
        self.manifest = manifest
        self.host = host
        self.port = port
        self.process = process
        self.logger = logger
    }

    public var pid: Int32 { process.pid }

    /// Starts the instance on `host` and waits until it is healthy.
    /// A port taken by someone else in the meantime is retried on another port.
    public static func start(
        _ manifest: ServiceManifest,
        host: String = "127.0.0.1",
        readinessTimeout: Duration = .seconds(15),
        logger: Logger
    ) async throws(InstanceError) -> ServiceInstance {
        guard let executable = ExecutableLookup.resolve(manifest.command) else {
            throw InstanceError(service: manifest.name, reason: "command '\(manifest.command)' not found (beside shoal or on PATH)")
        }
        var lastFailure = "no attempt made"
        for _ in 0..<3 {
            guard let port = FreePort.find(host: host) else {
                throw InstanceError(service: manifest.name, reason: "no free port on \(host)")
            }
            var environment = ProcessInfo.processInfo.environment.merging(manifest.environment) { $1 }
            environment["PORT"] = String(port)
            let process: ChildProcess
            do {
                // It must not outlive its worker or front-end, even one killed outright.
                process = try ChildProcess.spawn([executable] + manifest.arguments(forPort: port), environment: environment,
                                                 diesWithParent: true)
            } catch {
                throw InstanceError(service: manifest.name, reason: error.description)
            }
            let instance = ServiceInstance(manifest: manifest, host: host, port: port, process: process, logger: logger)
            logger.info("started service instance", metadata: [
                "service": "\(manifest.name)", "pid": "\(process.pid)", "address": "\(host):\(port)",
            ])
            switch await instance.waitUntilReady(timeout: readinessTimeout) {
            case .ready:
                return instance
            case .exited(let status):
                lastFailure = "exited with status \(status) before it was ready"
                logger.warning("service instance exited before it was ready; retrying on another port", metadata: [
                    "service": "\(manifest.name)", "status": "\(status)",
                ])
            case .timedOut:
                await instance.stop()
                throw InstanceError(service: manifest.name,
                                    reason: "not healthy at \(manifest.healthCheckPath) within \(readinessTimeout)")
            }
        }
        throw InstanceError(service: manifest.name, reason: lastFailure)
    }

    private enum Readiness { case ready, exited(Int32), timedOut }

    /// Probes the health-check path until it answers 2xx, the process ends, or time runs out.
    private func waitUntilReady(timeout: Duration) async -> Readiness {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while clock.now < deadline {
            if let status = process.exitStatus { return .exited(status) }
            if await probe() { return .ready }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return .timedOut
    }

    /// Whether the health check answers 2xx now.
    public func isHealthy() async -> Bool {
        guard process.exitStatus == nil else { return false }
        return await probe()
    }

    /// An HTTP service answers its health-check path; a TCP one accepts a connection.
    private func probe() async -> Bool {
        switch manifest.serviceProtocol {
        case .http: await HealthProbe.check(host: host, port: port, path: manifest.healthCheckPath)
        case .tcp: await HealthProbe.connects(host: host, port: port)
        }
    }

    /// In a daemon's `ServiceGroup` (first, so it stops last): runs until graceful shutdown, then
    /// stops the instance. An instance that exits on its own is an error: the daemon has lost
    /// what it serves with.
    public func run() async throws {
        let exited = await cancelWhenGracefulShutdown { await self.process.exitOrCancellation() }
        guard let exited else {
            await stop()
            return
        }
        throw InstanceError(service: manifest.name, reason: "exited with status \(exited) while serving")
    }

    /// SIGTERM, then SIGKILL after `grace`.
    public func stop(grace: Duration = .seconds(5)) async {
        let status = await process.terminate(grace: grace)
        logger.info("stopped service instance", metadata: ["service": "\(manifest.name)", "pid": "\(process.pid)", "status": "\(status)"])
    }
}

public struct InstanceError: Error, Sendable, Hashable, CustomStringConvertible {
    public var service: String
    public var reason: String

    public init(service: String, reason: String) {
        self.service = service
        self.reason = reason
    }

    public var description: String { "service '\(service)': \(reason)" }
}
