import ArgumentParser
import Foundation
import Logging
import PVM
import ServiceLifecycle
import ShoalAPI
import ShoalBroker
import ShoalCore
import ShoalInstance
import ShoalManifest
import UnixSignals

/// `shoal broker`: the one broker of a cluster — pool, lease table, arbitration and the API.
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Own the pool of back-ends and lease them to front-ends (HTTP/JSON API on loopback).",
        discussion: """
            The pool is a PVM virtual machine: the hosts of --cluster, or this host with --slots slots. \
            Leases live in STATE_DIR/broker.sqlite; the API token is STATE_DIR/token (mode 0600). \
            Stopping the broker leaves the pool and its workers running: a restarted broker adopts \
            them, and front-ends keep serving meanwhile. Prints one line 'shoal broker listening on \
            http://HOST:PORT ...' once it serves.
            """
    )

    @Option(help: "Cluster file (YAML) listing the pool's hosts and their slots.") var cluster: String?
    @Option(help: "Slots of the local host when no --cluster is given.") var slots = 3
    @Option(help: "State directory (default: SHOAL_STATE_DIR, else ~/.local/state/shoal).") var stateDir: String?
    @Option(help: "Address the API listens on. Anything but loopback exposes the pool's API to that network.")
    var host = BrokerAPI.defaultHost
    @Option(help: "API port (0: any free port).") var port = BrokerAPI.defaultPort
    @Option(help: "Attach to this running pvmd's socket instead of running the pool's own pvmd.") var pvmSocket: String?
    @Option(help: "Seconds a lease lives without its front-end's heartbeat.") var leaseTTL: Double = 10
    @OptionGroup var daemon: DaemonOptions

    func validate() throws {
        guard (1...64).contains(slots) else { throw ValidationError("--slots must be 1...64") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard leaseTTL >= 1, leaseTTL <= 3600 else { throw ValidationError("--lease-ttl must be 1...3600 seconds") }
    }

    func run() async throws {
        let logger = daemon.makeLogger(label: "shoal.broker")
        let clusterHosts = try cluster.map(loadCluster)
        let state = StateDirectory.resolve(stateDir)
        let token: String
        let lock: StateLock
        do {
            try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            lock = try await StateLock.acquire(stateDirectory: state, logger: logger)
            token = try BrokerToken.loadOrCreate(stateDirectory: state)
        } catch {
            printError("shoal broker: \(error)")
            throw ExitCode.failure
        }

        // The pool's pvmd: the one at --pvm-socket, or the broker's own (started anew if it dies).
        let attach: PVMLauncher.Attach = { [pvmSocket] in
            var socket = pvmSocket
            if socket == nil { socket = try await PersistentPVMDaemon.ensure(directory: state + "/pvm", logger: logger).socketPath }
            return try await PVMEngine.attach(socketPath: socket, logger: logger)
        }
        let engine = try await attach()
        let hosts: [PoolHost]
        if let clusterHosts {
            hosts = clusterHosts
        } else {
            hosts = [PoolHost(name: try await engine.hosts()[0].name, slots: slots)]
        }
        var configuration = Broker.Configuration(hosts: hosts)
        configuration.leaseTTL = .milliseconds(Int64(leaseTTL * 1000))
        let store = try LeaseStore(directory: state, logger: logger)
        let launcher = PVMLauncher(engine: engine, attach: attach, program: try ExecutableLookup.currentExecutable(),
                                   workerArguments: ["--log-level", "\(daemon.logLevel)", "--log-format", daemon.logFormat.rawValue], logger: logger)
        let broker = Broker(configuration: configuration, store: store, launcher: launcher, logger: logger)
        try await broker.recover()

        let poolText = hosts.map { "\($0.name)×\($0.slots)" }.joined(separator: " ")
        let server = BrokerHTTPServer(operations: broker, token: token, host: host, port: port, logger: logger) { [host] bound in
            let url = "http://\(["0.0.0.0", "::"].contains(host) ? HostAddress.advertised() : host):\(bound)"
            launcher.setBrokerURLs([url])
            announceReady("shoal broker listening on \(url) (pool \(poolText); state \(state))")
        }
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: launcher), .init(service: broker), .init(service: server)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
        await launcher.close()
        try store.close()
        _ = lock
        logger.notice("broker stopped; the pool and its workers keep running for the next broker")
    }

    private func loadCluster(_ path: String) throws -> [PoolHost] {
        switch ClusterLoader().load(path: path) {
        case .success(let hosts):
            return hosts
        case .failure(let problems):
            problems.diagnostics.forEach { printError($0.description) }
            throw ExitCode.failure
        }
    }
}
